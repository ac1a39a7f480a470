"""The paper's model (installed as ``psc_eval.models``).

One file per concern: ``config`` (TOML configs: ``configs/paper.toml``, ``configs/toy.toml``;
the ``[model]`` dataclass and the model's ``[train]`` defaults), ``network`` (f, h, g
wiring of the variants), ``losses`` (Eq. 6), ``dmol`` (the mixture of logistics),
``pixelcnn`` (the generator g), ``sampling`` (naive and cached raster-order samplers),
``method`` (``PSCMethod``: the model's optimiser and step for the core training loop) and
``variants`` (the registered colorizers ``ours``, ``psc-purple``, ``psc-purple-blue``,
``psc-film``, ``psc-embedding`` and their method records). Nothing heavy is imported here.
"""
