"""The paper's experiments beyond one evaluation: Fig. 9's segmentation curves
(``segcurves``), Fig. 10's diversity command (``diversity``), Table 4's naturalness proxy
(``naturalness``), the whole toy benchmark (``reproduce``) and its metrics regression
(``regress``). Each uses the runner, the training loop and the method records below it;
the report (``psc_eval.report``) draws their results.
"""
