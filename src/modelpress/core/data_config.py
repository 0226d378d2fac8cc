"""A recipe's ``data:`` block: the source, its splits, and how samples are fed (normalisation,
image preprocessing, text tokenisation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Splits(Strict):
    train: float = Field(0.7, ge=0, le=1)
    calibration: float = Field(0.1, ge=0, le=1)
    validation: float = Field(0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> Splits:
        if self.train + self.calibration + self.validation > 1.0 + 1e-9:
            raise ValueError("train + calibration + validation must not exceed 1")
        return self


class Normalize(Strict):
    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _lengths(self) -> Normalize:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need one value per channel, std > 0")
        return self


class Preprocess(Strict):
    """How images are fed, as the model was trained on them (folder: data and hf: folders): the
    shorter side resized to ``resize`` pixels (aspect kept) and the centre cropped to the input
    size (``crop``), channel order, then ``(x - mean) / std``. Without ``resize`` an image is
    resized to the input size as it is."""

    resize: int | None = Field(None, ge=1)
    crop: bool = True
    channels: Literal["rgb", "bgr"] = "rgb"
    mean: list[float] | None = None
    std: list[float] | None = None

    @model_validator(mode="after")
    def _stats(self) -> Preprocess:
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together: give both or neither")
        if self.mean is not None:
            Normalize(mean=self.mean, std=self.std or [])
        return self


class DataConfig(Strict):
    # builtin:digits | builtin:breast_cancer | builtin:digits-detect | builtin:digits-manipulated |
    # folder:PATH | npz:PATH | text:FILE | jsonl:FILE | csv:FILE |
    # yolo:DATA.yaml | coco:ANNOTATIONS.json[:IMAGES]
    source: str
    seed: int = 0
    splits: Splits = Splits()
    max_samples: int | None = Field(None, ge=10)  # stratified subsample, for quick runs
    normalize: Normalize | None = None
    resize: bool = False  # npz arrays are used exactly as given unless this asks
    preprocess: Preprocess | None = None  # images: resize + centre crop, channel order, mean/std
    allow_nonfinite: bool = False  # keep samples holding NaN/Inf (counted in the data summary)
    # text:/jsonl:/csv: sources. None everywhere by default (the recipe identity of runs from
    # before stays as it was): the tokenizer of the hf: model, 128 tokens, text / label
    tokenizer: str | None = None  # a folder with tokenizer.json or vocab.txt
    max_length: int | None = Field(None, ge=2)
    text_column: str | None = None
    label_column: str | None = None

    @model_validator(mode="after")
    def _one_normalization(self) -> DataConfig:
        if self.normalize is not None and self.preprocess and self.preprocess.mean is not None:
            raise ValueError("normalize and preprocess.mean/std both given; keep one")
        return self

    @field_validator("source")
    @classmethod
    def _kind(cls, v: str) -> str:
        kind = v.split(":", 1)[0]
        known = ("builtin", "folder", "npz", "text", "jsonl", "csv", "yolo", "coco")
        if kind not in known or ":" not in v:
            raise ValueError(
                f"'{v}' is not a data source; use builtin:digits, builtin:breast_cancer, "
                "builtin:digits-detect, folder:PATH, npz:PATH, text:FILE, jsonl:FILE, "
                "csv:FILE, yolo:DATA.yaml or coco:ANNOTATIONS.json"
            )
        return v
