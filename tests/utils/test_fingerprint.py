"""The config fingerprint that guards resuming in a run directory (zsl_lightning.utils.rundir)."""


def test_keys_added_later_leave_the_fingerprint_at_their_neutral_value():
    """A run directory made before eval.share_synthesis / recon_reduction / data.mode existed still resumes; set to
    anything that computes differently, the key is part of the fingerprint."""
    from omegaconf import OmegaConf

    from zsl_lightning.utils.rundir import FINGERPRINT_NEUTRAL, config_fingerprint

    base = {"seed": 0, "method": {"epochs": 2}, "eval": {"syn_num": 8}, "data": {"name": "x"}}
    before = config_fingerprint(OmegaConf.create(base))
    for key, value in FINGERPRINT_NEUTRAL.items():
        node, other = OmegaConf.create(base), "something else"
        OmegaConf.update(node, key, value, force_add=True)
        assert config_fingerprint(node) == before, key
        OmegaConf.update(node, key, other, force_add=True)
        assert config_fingerprint(node) != before, key
