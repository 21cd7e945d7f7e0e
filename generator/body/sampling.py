"""Who is in the picture and what they wear: the documented, seeded distributions of body shape
(Anny phenotypes) and clothing. Ranges and their meaning are in docs/conventions.md ("Human body")."""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .model import PHENOTYPE_LABELS

FloatRange = tuple[float, float]
PATTERNS = ("solid", "hstripes", "vstripes", "checks")
# Seed stream of the identity pool, apart from every frame's stream.
IDENTITY_STREAM = 0x1D3E


def _range(name: str, r: FloatRange, low: float = 0.0, high: float = 1.0) -> FloatRange:
    if not (low <= r[0] <= r[1] <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {list(r)}")
    return r


class HumanConfig(BaseModel):
    """The identity pool and the clothing of the human body (the built-in player's default figure).

    Anny's phenotype values lie in [0, 1]. Age: 1/3 is a child of about 11 years, 2/3 a young adult
    of about 25, 1 an elder of about 90 (MakeHuman's anchors); gender 0 is male, 1 female.
    """

    model_config = ConfigDict(extra="forbid")

    identities: int = Field(64, ge=1, le=4096)  # bodies built per player process, drawn per frame
    identity_seed: int = Field(0, ge=0)  # change it for test sets of bodies no training render used
    age_groups: dict[str, float] = Field(default_factory=lambda: {"child": 0.15, "adult": 0.65, "elder": 0.2})
    child_age: FloatRange = (0.1, 0.45)
    adult_age: FloatRange = (0.55, 0.85)
    elder_age: FloatRange = (0.85, 1.0)
    female_probability: float = Field(0.5, ge=0.0, le=1.0)
    gender_spread: float = Field(0.2, ge=0.0, le=0.5)  # male U(0, s), female U(1 - s, 1)
    muscle: FloatRange = (0.1, 0.9)
    weight: FloatRange = (0.1, 0.9)
    height: FloatRange = (0.1, 0.7)
    proportions: FloatRange = (0.3, 0.9)
    # Clothing: sleeve and trouser-leg ends on the limb coordinate (0 root joint, 1 middle, 2 end).
    sleeveless_end: FloatRange = (0.0, 0.05)
    short_sleeve_end: FloatRange = (0.3, 0.65)
    long_sleeve_end: FloatRange = (1.8, 2.05)
    shorts_end: FloatRange = (0.35, 0.8)
    trousers_end: FloatRange = (1.85, 2.05)
    waist: FloatRange = (0.12, 0.3)  # on the trunk coordinate: 0 hips, 1 shoulders
    neckline: FloatRange = (1.06, 1.14)
    pattern_weights: dict[str, float] = Field(default_factory=lambda: {"solid": 3.0, "hstripes": 1.0, "vstripes": 0.5, "checks": 1.0})
    pattern_period_mm: FloatRange = (20.0, 120.0)

    @field_validator("child_age", "adult_age", "elder_age", "muscle", "weight", "height", "proportions")
    @classmethod
    def _unit_range(cls, v: FloatRange, info) -> FloatRange:
        return _range(info.field_name, v)

    @field_validator("sleeveless_end", "short_sleeve_end", "long_sleeve_end", "shorts_end", "trousers_end", "waist", "neckline")
    @classmethod
    def _limb_range(cls, v: FloatRange, info) -> FloatRange:
        return _range(info.field_name, v, 0.0, 2.5)

    @field_validator("pattern_period_mm")
    @classmethod
    def _period(cls, v: FloatRange) -> FloatRange:
        return _range("pattern_period_mm", v, 1.0, 10_000.0)

    @field_validator("age_groups", "pattern_weights")
    @classmethod
    def _weights(cls, v: dict[str, float], info) -> dict[str, float]:
        known = ("child", "adult", "elder") if info.field_name == "age_groups" else PATTERNS
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(f"unknown {info.field_name} {unknown}; known: {list(known)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"{info.field_name} must be non-negative with a positive sum, got {v}")
        return v



def pick(rng: np.random.Generator, weights: dict[str, float], names: tuple[str, ...], n: int) -> np.ndarray:
    """n indices into names, drawn with the given weights (missing names weigh 0)."""
    w = np.array([weights.get(k, 0.0) for k in names], dtype=np.float64)
    return rng.choice(len(names), size=n, p=w / w.sum())


def sample_phenotypes(rng: np.random.Generator, config: HumanConfig, n: int) -> np.ndarray:
    """(n, 6) phenotypes in PHENOTYPE_LABELS order."""
    groups = ("child", "adult", "elder")
    group = pick(rng, config.age_groups, groups, n)
    bounds = np.array([config.child_age, config.adult_age, config.elder_age])[group]
    age = rng.uniform(bounds[:, 0], bounds[:, 1])
    female = rng.random(n) < config.female_probability
    spread = rng.uniform(0.0, config.gender_spread, n)
    gender = np.where(female, 1.0 - spread, spread)
    out = {"gender": gender, "age": age}
    for name in ("muscle", "weight", "height", "proportions"):
        lo, hi = getattr(config, name)
        out[name] = rng.uniform(lo, hi, n)
    return np.stack([out[k] for k in PHENOTYPE_LABELS], axis=1)


@dataclasses.dataclass
class Clothing:
    """One frame's skin, hair and garments (sRGB colours in [0, 1])."""

    skin: np.ndarray
    hair: np.ndarray
    eye: np.ndarray
    top: np.ndarray
    top2: np.ndarray
    bottom: np.ndarray
    bottom2: np.ndarray
    shoes: np.ndarray
    sleeve_end: float
    leg_end: float
    waist: float  # trunk coordinate (0 hips, 1 shoulders) of the waistband
    neckline: float  # trunk coordinate where the top ends at the neck
    top_pattern: int  # index into PATTERNS
    bottom_pattern: int
    top_period_mm: float
    bottom_period_mm: float
