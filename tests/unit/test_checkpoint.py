"""Checkpoint records: the training identity an evaluation stores of the weights it read."""


def test_training_identity_groups_seeds_not_configs():
    """Two checkpoints of one config and other training seeds share the training key; a
    key that moves no number (device) keeps it; one that moves numbers (lr) changes it."""
    from psc_eval.checkpoint import checkpoint_info, training_identity

    cfg = {"model": {"width": 8}, "train": {"seed": 0, "lr": 1e-3, "device": "cpu"}}

    def with_(**train):
        return {"model": dict(cfg["model"]), "train": {**cfg["train"], **train}}

    a, b = training_identity(cfg), training_identity(with_(seed=2))
    assert a["train_seed"] == 0 and b["train_seed"] == 2
    assert a["train_config_key"] == b["train_config_key"] == \
        training_identity(with_(device="cuda"))["train_config_key"]
    assert training_identity(with_(lr=2e-3))["train_config_key"] != a["train_config_key"]
    assert training_identity({"model": {}}) == {} and training_identity(None) == {}
    info = checkpoint_info({"config": with_(seed=1), "epoch": 1, "step": 2}, "/x.pt")
    assert info["train_seed"] == 1 and info["train_config_key"] == a["train_config_key"]
    # the weights evaluated: the Polyak average's decay, 0 for the last step's weights
    assert a["weights_average"] == 0.0 and info["weights_average"] == 0.0
    assert training_identity(with_(polyak=0.999))["weights_average"] == 0.999
