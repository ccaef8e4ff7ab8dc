"""The layer-spec grammar both design families share: the same bad spec, the same sentence."""

import pytest

from ganrf.config import TrainConfig
from ganrf.design.designs import DesignError, DiscriminatorDesign
from ganrf.design.resnet import ResidualDesign
from ganrf.design.rf import RFError, parse_specs
from ganrf.design.spec import SpecError, layer_channels, split_spec

FAMILIES = (DiscriminatorDesign, ResidualDesign)


@pytest.mark.parametrize(
    "layers, channels, sentence",
    [
        (
            "",
            None,
            "no layers in ''; give comma-separated layers, e.g. conv5s2,conv5s2 or res3s2,res3",
        ),
        (" , ", None, "no layers in ' , '; give comma-separated layers"),
        ("x,,y", None, "layer 2 of 'x,,y' is empty; remove the extra comma"),
        ("x,", None, "layer 2 of 'x,' is empty; remove the extra comma"),
    ],
)
def test_both_families_refuse_a_bad_spec_in_one_sentence(layers, channels, sentence):
    said = []
    for family in FAMILIES:
        with pytest.raises(DesignError) as e:
            family.from_spec(layers, channels=channels)
        said.append(str(e.value))
    assert said[0] == said[1]
    assert said[0].startswith(sentence)
    with pytest.raises(RFError) as e:  # and receptive_field's parser, the same words
        parse_specs(layers)
    assert str(e.value) == said[0]


@pytest.mark.parametrize(
    "channels, sentence",
    [
        ("8,8,8", "3 channel counts for 2 layers in {!r}; give one per layer"),
        ("64,x", "channels '64,x' must be comma-separated whole numbers, one per layer"),
    ],
)
def test_both_families_refuse_bad_channels_in_one_sentence(channels, sentence):
    for family, layers in zip(FAMILIES, ("conv3,conv3", "res3,res3")):
        with pytest.raises(DesignError) as e:
            family.from_spec(layers, channels=channels)
        assert str(e.value) == sentence.format(layers)


def test_an_unreadable_token_names_its_family_grammar_in_the_same_words():
    for family, grammar in zip(FAMILIES, ("layers are comma-separated", "residual layers are")):
        with pytest.raises(DesignError, match=f"^cannot read layer 2 'bogus'; {grammar}"):
            family.from_spec("conv3,bogus" if family is DiscriminatorDesign else "res3,bogus")


def test_the_grammar_reads_tokens_and_a_head():
    assert split_spec(" Conv5S2 , conv5s2,Patch") == (["conv5s2", "conv5s2"], "patch")
    assert split_spec("res3,dense") == (["res3"], "image")
    assert split_spec("res3") == (["res3"], None)
    assert layer_channels("64, 128", 2, "a,b") == (64, 128)
    assert layer_channels(None, 2, "a,b") is None
    with pytest.raises(SpecError, match="1 channel counts for 2 layers"):
        layer_channels((64,), 2, "a,b")


def test_a_config_key_names_the_same_sentence():
    with pytest.raises(DesignError, match="3 channel counts for 2 layers in 'res3,res3'"):
        TrainConfig.from_dict(
            {"d.layers": "res3,res3", "d.channels": "8,8,8", "d.norm": "spectral"}
        )
