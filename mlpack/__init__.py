"""mlpack: source control for trained models.

A pack is one signed file holding a model's weights, code and records
(spec/README.md). The library verbs, imported lazily so ``mlpack --help`` stays fast:

    from mlpack import keys, pack, verify
    key = keys.load_signing_key("me.pem")
    pack.pack_directory("model/", "model.mlpack", key=key)
    report = verify.verify_pack("model.mlpack", trust=keys.load_trust(["me.pub"], []))
    assert report.ok

Training scripts record their run with :func:`mlpack.run` (``mlpack.training.run``):

    with mlpack.run(params=cfg, seed=0, threads=1) as run:
        ...; run.log_metric("accuracy", acc, dataset="digits-test")
        run.save_weights(model, "model.safetensors")
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run"]


def __getattr__(name: str) -> Any:
    if name == "run":  # lazily: `import mlpack` stays a few milliseconds
        from .training import run

        return run
    raise AttributeError(f"module 'mlpack' has no attribute {name!r}")
