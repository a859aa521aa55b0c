"""mlpack: source control for trained models.

A pack is one signed file holding a model's weights, code and records
(spec/README.md). The library verbs, imported lazily so ``mlpack --help`` stays fast:

    from mlpack import keys, pack, verify
    key = keys.load_signing_key("me.pem")
    pack.pack_directory("model/", "model.mlpack", key=key)
    report = verify.verify_pack("model.mlpack", trust=keys.load_trust(["me.pub"], []))
    assert report.ok
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
