"""The paper's model (installed as ``psc_eval.models``).

One file per concern: ``config`` (TOML configs: ``configs/paper.toml``, ``configs/toy.toml``),
``network`` (f, h, g wiring of the variants), ``losses`` (Eq. 6), ``dmol`` (the mixture of
logistics), ``pixelcnn`` (the generator g), ``sampling`` (naive and cached raster-order
samplers), ``colorizer`` (the
registered colorizers ``ours``, ``psc-purple``, ``psc-purple-blue``, ``psc-film``,
``psc-embedding``) and ``commands`` (``PSCMethod``, the model's optimiser and step for
the core training loop ``psc_eval.training``, and ``psc-eval train`` / ``psc-eval sample``).
Nothing heavy is imported here.
"""
