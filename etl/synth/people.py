"""Vietnamese-looking names, addresses and phone numbers for the customers (personal data)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.synth.calendar import AGRICULTURE, COMMERCIAL, INDUSTRIAL, OTHER, PUBLIC_ADMIN

FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Trương",
)
FAMILY_WEIGHTS = (38, 11, 10, 7, 5, 4, 4, 4, 3, 3, 3, 3, 2, 1, 1, 1)
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quang", "Xuân", "Công", "Đình", "Kim")
GIVEN = (
    "An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Lan", "Linh", "Long",
    "Mai", "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Thắng", "Trang", "Tuấn", "Việt", "Yến",
    "Khánh", "Lộc", "Nhung", "Vy",
)  # fmt: skip
BUSINESS = (
    "Minh Phát",
    "Thành Công",
    "Hoàng Long",
    "Phú Quý",
    "Đại Phát",
    "Trường Sơn",
    "Quảng Trị Xanh",
    "Sao Mai",
    "Hưng Thịnh",
    "Bình Minh",
)
PHONE_PREFIX = (
    "090",
    "091",
    "093",
    "094",
    "096",
    "097",
    "098",
    "086",
    "088",
    "070",
    "077",
    "079",
    "032",
    "035",
    "039",
    "085",
)


def _pick(
    rng: np.random.Generator, options: tuple[str, ...], n: int, weights: tuple[int, ...] | None = None
) -> pa.Array:
    p = np.array(weights, dtype=float) / sum(weights) if weights else None
    return pa.array(list(options)).take(pa.array(rng.choice(len(options), n, p=p)))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def names(rng: np.random.Generator, klass: np.ndarray, commune: pa.Array) -> pa.Array:
    """A person's name for households, an organisation's name for everyone else."""
    n = len(klass)
    person = _join(
        _pick(rng, FAMILY, n, FAMILY_WEIGHTS), " ", _pick(rng, MIDDLE, n), " ", _pick(rng, GIVEN, n)
    )
    business = _pick(rng, BUSINESS, n)
    by_class = {
        COMMERCIAL: _join("Cửa hàng ", _pick(rng, GIVEN, n), " ", business),
        INDUSTRIAL: _join("Công ty TNHH ", business),
        PUBLIC_ADMIN: _join(
            _pick(rng, ("UBND xã ", "Trường Tiểu học ", "Trạm y tế ", "Chiếu sáng công cộng "), n), commune
        ),
        AGRICULTURE: _join("HTX Nông nghiệp ", commune),
        OTHER: _join(_pick(rng, ("Chùa ", "Nhà văn hóa thôn ", "Công trình xây dựng "), n), commune),
    }
    out = person
    for k, values in by_class.items():
        out = pc.if_else(pa.array(klass == k), values, out)
    return out


def addresses(rng: np.random.Generator, commune: pa.Array, district: pa.Array) -> pa.Array:
    """'Thôn 3, xã Cam Thủy, huyện Cam Lộ, Quảng Trị'-style addresses (with commas: quoted in CSV)."""
    n = len(commune)
    hamlet = pa.array(rng.integers(1, 13, n)).cast(pa.string())
    return _join("Thôn ", hamlet, ", ", commune, ", ", district, ", Quảng Trị")


def phones(rng: np.random.Generator, n: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(rng.integers(0, 10_000_000, n)).cast(pa.string()), 7, "0")
    return _join(_pick(rng, PHONE_PREFIX, n), digits)
