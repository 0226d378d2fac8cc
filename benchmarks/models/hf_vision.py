"""transformers vision architectures built from their configs (random init, no download), for
benchmarks/bench_real_models.py: the models a user brings, as ``file.py:factory``."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers


def efficientnet(num_classes: int = 10, **_: object):
    config = transformers.EfficientNetConfig(
        image_size=64, num_labels=num_classes, depth_coefficient=0.5
    )
    return transformers.EfficientNetForImageClassification(config)


def mobilevit(num_classes: int = 10, **_: object):
    config = transformers.MobileViTV2Config(
        image_size=64, num_labels=num_classes, width_multiplier=0.5
    )
    return transformers.MobileViTV2ForImageClassification(config)


def mobilenet(num_classes: int = 10, **_: object):
    config = transformers.MobileNetV2Config(
        image_size=64, num_labels=num_classes, depth_multiplier=0.5
    )
    return transformers.MobileNetV2ForImageClassification(config)


def vit(num_classes: int = 10, **_: object):
    config = transformers.ViTConfig(
        image_size=64, patch_size=8, hidden_size=96, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=192, num_labels=num_classes,
    )  # fmt: skip
    return transformers.ViTForImageClassification(config)
