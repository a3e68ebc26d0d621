"""The segmentation model: encoder depths, output strides, heads, presets, torchvision weights."""

from __future__ import annotations

import json

import pytest
import torch

from napari_crack_al.core.errors import CheckpointError, ConfigError
from napari_crack_al.core.model import (
    DECODERS,
    PRESETS,
    CrackSegmenter,
    ModelConfig,
    ResNetEncoder,
    SegmenterOutput,
    build_model,
    get_preset,
    load_encoder_weights,
    preset_config,
)

torch.set_num_threads(1)

TINY = dict(decoder_channels=16, low_level_channels=8, rep_dim=8)


def tiny(encoder: str = "resnet18", **kw) -> ModelConfig:
    return ModelConfig(encoder=encoder, **{**TINY, **kw})


_ASPP = {"deeplabv3plus": "decoder.aspp.pool.conv.weight",
         "deeplabv3plus_unet": "decoder.deeplab.aspp.pool.conv.weight",
         "unet": "decoder.blocks.0.conv1.0.weight"}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("output_stride", [16, 8, 32])
@pytest.mark.parametrize("encoder", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_shapes_and_gradients(encoder, output_stride, decoder):
    torch.manual_seed(0)
    model = build_model(tiny(encoder, output_stride=output_stride, decoder=decoder)).train()
    x = torch.randn(2, 1, 64, 64)
    out = model(x, with_features=True)
    assert isinstance(out, SegmenterOutput)
    assert out.logits.shape == (2, 2, 64, 64)
    assert out.features.shape == (2, 8, 16, 16)
    assert out.aux_logits.shape == (2, 2, 64, 64)
    expansion = 4 if encoder in ("resnet50", "resnet101") else 1
    assert model.encoder.out_channels == tuple(c * expansion for c in (64, 128, 256, 512))
    feats = model.encoder(x)
    assert [f.shape[1] for f in feats] == list(model.encoder.out_channels)
    assert feats[3].shape[-1] == 64 // output_stride
    assert feats[2].shape[-1] == 64 // (8 if output_stride == 8 else 16)
    assert model.encoder.reductions == (4, 8, 8 if output_stride == 8 else 16, output_stride)

    loss = sum(t.square().mean() for t in (out.logits, out.features, out.aux_logits))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # gradients reach the very first conv and every head
    for name in ("encoder.conv1.weight", "classifier.classifier.weight", "aux.classifier.weight",
                 "representation.proj.weight", _ASPP[decoder]):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name


def test_any_input_size_and_batch_one_in_train_mode():
    torch.manual_seed(0)
    model = build_model(preset_config("fast")).train()
    out = model(torch.randn(1, 1, 100, 130), with_features=True)
    assert out.logits.shape == (1, 2, 100, 130)
    assert out.aux_logits.shape == (1, 2, 100, 130)
    assert out.features.shape == (1, 64, 25, 33)  # layer1 resolution (1/4, rounded up)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 100, 130))
    assert out.logits.shape == (1, 2, 100, 130)
    assert out.features is None and out.aux_logits is None  # aux only in training mode


def test_no_aux_head_and_input_checks():
    model = build_model(tiny(aux_head=False)).train()
    assert model.aux is None
    out = model(torch.randn(2, 1, 32, 48))
    assert out.aux_logits is None and out.features is None
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(2, 3, 32, 32))
    three = build_model(tiny(in_channels=3))
    assert three.encoder.conv1.weight.shape == (64, 3, 7, 7)


def test_zero_init_last_bn_and_dilation():
    model = build_model(tiny("resnet50", output_stride=8, multi_grid=(1, 2, 4),
                             decoder="deeplabv3plus"))
    blocks = [b for layer in (model.encoder.layer1, model.encoder.layer2, model.encoder.layer3,
                              model.encoder.layer4) for b in layer]
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for b in blocks)
    assert all(torch.all(b.bn1.weight == 1) for b in blocks)
    assert [b.conv2.dilation[0] for b in model.encoder.layer4] == [4, 8, 16]
    assert [b.conv2.stride[0] for b in model.encoder.layer3] == [1] * 6
    assert [b.conv2.dilation[0] for b in model.encoder.layer3] == [1, 2, 2, 2, 2, 2]
    os16 = build_model(tiny("resnet18", decoder="deeplabv3plus"))
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in os16.encoder.layer1)
    assert [b.conv2.dilation[0] for b in os16.encoder.layer4] == [1, 2]  # torchvision rule
    assert os16.encoder.layer3[0].conv1.stride == (2, 2)
    # ASPP rates follow the output stride
    assert [b[0].dilation[0] for b in model.decoder.aspp.branches[1:]] == [12, 24, 36]
    assert [b[0].dilation[0] for b in os16.decoder.aspp.branches[1:]] == [6, 12, 18]


def test_build_is_deterministic_for_a_seed():
    torch.manual_seed(3)
    a = build_model(tiny())
    torch.manual_seed(3)
    b = build_model(tiny())
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _torchvision_resnet18_keys() -> set[str]:
    """The key patterns of torchvision.models.resnet18().state_dict(), fc excluded."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight"} | {f"bn1.{s}" for s in bn}
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}."
            keys |= {p + "conv1.weight", p + "conv2.weight"}
            keys |= {f"{p}bn1.{s}" for s in bn} | {f"{p}bn2.{s}" for s in bn}
        if layer > 1:
            keys.add(f"layer{layer}.0.downsample.0.weight")
            keys |= {f"layer{layer}.0.downsample.1.{s}" for s in bn}
    return keys


def test_encoder_keys_match_torchvision():
    enc = ResNetEncoder(18, in_channels=1)
    assert set(enc.state_dict()) == _torchvision_resnet18_keys()
    assert len(_torchvision_resnet18_keys()) == 120  # 122 with fc.weight, fc.bias
    enc50 = ResNetEncoder(50, in_channels=3).state_dict()
    known = {"conv1.weight": (64, 3, 7, 7), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
             "layer3.5.conv3.weight": (1024, 256, 1, 1), "layer4.2.bn3.running_var": (2048,),
             "layer4.0.conv2.weight": (512, 512, 3, 3)}
    for key, shape in known.items():
        assert tuple(enc50[key].shape) == shape, key
    assert not any(k.startswith("fc.") for k in enc50)
    assert "layer3.22.conv3.weight" in ResNetEncoder(101).state_dict()


def test_load_fake_torchvision_weights(tmp_path):
    torch.manual_seed(1)
    rgb = ResNetEncoder(18, in_channels=3)
    # random values; no num_batches_tracked, like torchvision's published files
    sd = {k: torch.randn_like(v) for k, v in rgb.state_dict().items() if v.is_floating_point()}
    sd["fc.weight"] = torch.randn(1000, 512)
    sd["fc.bias"] = torch.randn(1000)
    path = tmp_path / "resnet18-fake.pth"
    torch.save(sd, path)

    model = build_model(tiny("resnet18"))
    load_encoder_weights(model, path)
    got = model.encoder.state_dict()
    assert torch.allclose(got["conv1.weight"], sd["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(got["layer3.1.bn2.running_var"], sd["layer3.1.bn2.running_var"])
    assert torch.equal(got["layer4.0.downsample.0.weight"], sd["layer4.0.downsample.0.weight"])
    # a grey image gives the same first-conv response as the RGB weights on R = G = B
    grey = torch.randn(1, 1, 16, 16)
    ref = torch.nn.functional.conv2d(grey.expand(1, 3, 16, 16), sd["conv1.weight"],
                                     stride=2, padding=3)
    assert torch.allclose(model.encoder.conv1(grey), ref, atol=1e-4)


def test_load_weights_errors(tmp_path):
    model = build_model(tiny("resnet18"))
    with pytest.raises(CheckpointError, match="does not exist") as info:
        load_encoder_weights(model, tmp_path / "nope.pth")
    assert "nope.pth" in str(info.value)
    path = tmp_path / "r34.pth"
    torch.save(ResNetEncoder(34).state_dict(), path)
    with pytest.raises(CheckpointError, match="unexpected keys: layer1.2.bn1") as info:
        load_encoder_weights(model, path)
    assert "r34.pth" in str(info.value)
    path50 = tmp_path / "r50.pth"
    torch.save(ResNetEncoder(50).state_dict(), path50)
    with pytest.raises(CheckpointError, match="unexpected keys: layer1.0.bn3"):
        load_encoder_weights(model, path50)
    sd = ResNetEncoder(18, in_channels=2).state_dict()
    two = tmp_path / "two.pth"
    torch.save(sd, two)
    with pytest.raises(CheckpointError, match="conv1 has 2 input channels; expected 3"):
        load_encoder_weights(model, two)
    sd = ResNetEncoder(18, in_channels=1).state_dict()
    sd["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    wide = tmp_path / "wide.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, wide)
    with pytest.raises(CheckpointError,
                       match=r"shapes do not match.*layer2.0.conv1.weight \(128, 64, 5, 5\)"):
        load_encoder_weights(model, wide)
    junk = tmp_path / "junk.pth"
    torch.save({"a": 1}, junk)
    with pytest.raises(CheckpointError, match="not a ResNet state dict"):
        load_encoder_weights(model, junk)


def test_config_errors_list_valid_options():
    with pytest.raises(ConfigError, match="resnet18, resnet34, resnet50, resnet101"):
        ModelConfig(encoder="resnet19")
    with pytest.raises(ConfigError, match="16, 8, 32"):
        ModelConfig(output_stride=4)
    with pytest.raises(ConfigError, match="fast, accurate"):
        preset_config("turbo")
    with pytest.raises(ConfigError, match="fast, accurate"):
        get_preset("turbo")
    with pytest.raises(ConfigError, match="num_classes"):
        ModelConfig(num_classes=1)
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="multi_grid"):
        ModelConfig(multi_grid=(1, 0))
    with pytest.raises(ConfigError, match="valid keys: encoder"):
        ModelConfig.from_dict({"encoder": "resnet18", "depth": 3})
    with pytest.raises(ConfigError, match="valid depths: 18, 34, 50, 101"):
        ResNetEncoder(depth=20)
    with pytest.raises(ConfigError, match="decoder must be one of unet, deeplabv3plus, deeplabv3plus_unet"):
        ModelConfig(decoder="fpn")
    with pytest.raises(ConfigError, match="refine_channels must be 2 integers"):
        ModelConfig(refine_channels=(16,))
    with pytest.raises(ConfigError, match="unet_channels must be 5 integers"):
        ModelConfig(unet_channels=(8, 8, 8, 8, 0))


@pytest.mark.parametrize("decoder, stride", [("deeplabv3plus", 4), ("deeplabv3plus_unet", 1),
                                             ("unet", 1)])
def test_decoder_resolution(decoder, stride):
    """The full-resolution decoders compute logits at the input size; DeepLabV3+ at 1/4."""
    model = build_model(tiny(decoder=decoder)).eval()
    assert model.logits_stride == stride
    x = torch.randn(1, 1, 64, 48)
    with torch.no_grad():
        head_in, rep_in = model.decoder(x, model.encoder(x, with_stem=True))
        raw = model.classifier(head_in)
    assert raw.shape[-2:] == (64 // stride, 48 // stride)
    assert rep_in.shape[-2:] == (16, 12)  # the representation head always reads 1/4


def test_stages_and_stem_channels():
    enc = ResNetEncoder(depth=18)
    stages = enc(torch.randn(1, 1, 64, 64), with_stem=True)
    assert [s.shape[1] for s in stages] == [enc.stem_channels, *enc.out_channels]
    assert [64 // s.shape[-1] for s in stages] == [2, *enc.reductions]


def test_config_round_trip_is_json():
    cfg = ModelConfig(encoder="resnet34", output_stride=8, multi_grid=(1, 2, 4), aux_head=False)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["multi_grid"] == [1, 2, 4]
    assert ModelConfig.from_dict(data) == cfg
    assert ModelConfig.from_dict({"encoder": "resnet18"}) == ModelConfig(encoder="resnet18")
    for decoder in DECODERS:
        cfg = ModelConfig(decoder=decoder, refine_channels=(8, 4))
        assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_presets():
    fast, accurate = get_preset("fast"), get_preset("accurate")
    assert set(PRESETS) == {"fast", "accurate"}
    assert fast.model.encoder == "resnet18" and fast.model.output_stride == 32
    assert fast.model.decoder == accurate.model.decoder == "unet"
    m = fast.model
    assert (m.decoder_channels, m.low_level_channels, m.rep_dim) == (64, 24, 64)
    assert (fast.crop_size, fast.batch_size) == (256, 4)
    assert accurate.model.encoder == "resnet50"
    assert (accurate.model.decoder_channels, accurate.model.low_level_channels) == (256, 48)
    assert (accurate.crop_size, accurate.batch_size) == (512, 8)
    assert preset_config("fast") is fast.model
    json.dumps(fast.to_dict())
    n_fast = sum(p.numel() for p in build_model(fast.model).parameters())
    n_acc = sum(p.numel() for p in build_model(accurate.model).parameters())
    assert 13e6 < n_fast < 16e6 and 30e6 < n_acc < 40e6
    assert isinstance(build_model(fast.model), CrackSegmenter)
    with pytest.raises(TypeError):
        build_model("fast")  # type: ignore[arg-type]


def test_ridge_prior_channel():
    """The detector's dark-ridge response as an extra input channel: fixed, inside the model."""
    from napari_crack_al.core.model.prior import RidgePrior

    prior = RidgePrior()
    assert list(prior.parameters()) == []
    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, :, 30:32] = -3.0  # a dark line 2 px wide
    r = prior(x)
    assert r.shape == (1, 1, 64, 64) and (r >= 0).all()
    assert r[0, 0, 32, 30:32].min() > 5 * r[0, 0, 32, 10].abs().max() + 0.5
    assert prior(-x)[0, 0, 32, 30:32].max() < 1e-3  # a bright line is not a crack
    model = build_model(tiny(decoder="unet", ridge_prior=True)).eval()
    assert model.encoder.conv1.weight.shape[1] == 2
    assert model.config.in_channels == 1
    with torch.no_grad():
        assert model(torch.randn(2, 1, 48, 64)).logits.shape == (2, 2, 48, 64)
    assert not any(k.startswith("prior.") for k in model.state_dict())
