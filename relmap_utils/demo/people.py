"""Fake personal data that looks real: names, resident ID numbers, mobile numbers, addresses.

Every value is synthetic. Resident ID numbers use the region codes 990001 and up,
which no mainland region uses, so a demo number cannot belong to a real person.
Their check digits are valid, so they exercise the same code paths as real ones.
"""

from __future__ import annotations

import numpy as np

# Common surnames, roughly most frequent first. The Zipf-like weights
# 1 / rank^0.8 are an approximation, not measured frequencies.
SURNAMES = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"))
_SURNAME_WEIGHT = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8

GIVEN_MALE = np.array(list("伟强磊军洋勇杰涛明超刚平辉鹏华飞宇浩轩博文俊峰亮东成建国志海林斌波凯晨阳睿泽铭皓天昊宏振兴德福永荣鑫"))
GIVEN_FEMALE = np.array(list("芳娜敏静丽艳娟秀霞英玉兰萍红婷雪琳颖倩丹宁燕秋慧佳怡欣涵梓雨思诗琪悦晴瑶妍蕾梅莉洁璐"))
GIVEN_NEUTRAL = np.array(list("子一嘉若安语晓小立新春子文明"))

# City and tier (城市等级) in the common 一线/新一线/二线 ... ranking; the
# assignment is approximate and only has to look plausible.
CITIES = (
    ("北京", "一线"), ("上海", "一线"), ("广州", "一线"), ("深圳", "一线"),
    ("成都", "新一线"), ("杭州", "新一线"), ("重庆", "新一线"), ("武汉", "新一线"), ("西安", "新一线"),
    ("苏州", "新一线"), ("南京", "新一线"), ("天津", "新一线"), ("长沙", "新一线"), ("郑州", "新一线"),
    ("合肥", "二线"), ("福州", "二线"), ("济南", "二线"), ("大连", "二线"), ("厦门", "二线"),
    ("昆明", "二线"), ("南昌", "二线"), ("南宁", "二线"), ("贵阳", "二线"), ("太原", "二线"),
    ("洛阳", "三线"), ("绵阳", "三线"), ("桂林", "三线"), ("扬州", "三线"), ("芜湖", "三线"),
    ("赣州", "三线"), ("湛江", "三线"), ("宜昌", "三线"),
    ("商丘", "四线及以下"), ("周口", "四线及以下"), ("南充", "四线及以下"), ("邵阳", "四线及以下"),
    ("曲靖", "四线及以下"), ("六安", "四线及以下"),
)
CITY_NAMES = np.array([city for city, _ in CITIES])
CITY_TIERS = np.array([tier for _, tier in CITIES])
TIERS = ("一线", "新一线", "二线", "三线", "四线及以下")

_DISTRICTS = np.array(["城东区", "城西区", "城南区", "城北区", "高新区", "经开区", "新城区", "老城区", "滨江区", "开发区"])
_ROADS = np.array(
    ["人民路", "解放路", "建设路", "中山路", "和平路", "胜利路", "文化路", "新华路", "光明路", "长江路",
     "黄河路", "滨江路", "学府路", "科技路", "工业路", "幸福路", "花园路", "青年路", "东风路", "朝阳路"]
)

# Mainland mobile number prefixes (13x, 15x, 166, 17x, 18x, 19x).
_MOBILE_PREFIXES = np.array(
    [130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158, 159,
     166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 191, 198, 199]
)

# GB 11643: weights of the 17 digits and the check character for each remainder mod 11.
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.array(list("10X98765432"))
FICTITIOUS_REGION_BASE = 990000


def make_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Draw a full name (surname and one or two given characters) per person."""
    n = len(male)
    surname = rng.choice(SURNAMES, size=n, p=_SURNAME_WEIGHT / _SURNAME_WEIGHT.sum())
    first = np.where(male, rng.choice(GIVEN_MALE, size=n), rng.choice(GIVEN_FEMALE, size=n))
    second_pool = np.where(male, rng.choice(GIVEN_MALE, size=n), rng.choice(GIVEN_FEMALE, size=n))
    second = np.where(rng.random(n) < 0.15, rng.choice(GIVEN_NEUTRAL, size=n), second_pool)
    two_characters = rng.random(n) < 0.7
    given_name = np.where(two_characters, np.char.add(first, second), first)
    return np.char.add(surname, given_name).astype(object)


def id_check_character(first17: np.ndarray) -> np.ndarray:
    """Return the GB 11643 (ISO 7064 MOD 11-2) check character of 17-digit strings."""
    digits = np.array([[int(ch) for ch in text] for text in first17], dtype=np.int64).reshape(-1, 17)
    return _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]


def make_id_numbers(
    rng: np.random.Generator, city_index: np.ndarray, birth: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """Build unique 18-digit resident ID numbers with valid check characters.

    Positions 1-6 are a fictitious region code (``990001`` + city index), 7-14 the
    birth date, 15-17 a sequence number that is odd for men and even for women,
    and 18 the check character (a digit or ``X``).
    """
    n = len(birth)
    region = FICTITIOUS_REGION_BASE + 1 + city_index
    birth_text = np.char.replace(birth.astype("datetime64[D]").astype(str), "-", "")
    # Rank people that share region and birth date so that their sequence numbers differ.
    order = np.lexsort((rng.random(n), birth.astype(np.int64), region))
    group_key = region[order] * 100_000 + birth.astype(np.int64)[order]
    starts = np.r_[True, group_key[1:] != group_key[:-1]]
    rank_sorted = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    # A group-dependent offset keeps the numbers from all starting at 000 or 001.
    offset = (region * 7919 + birth.astype(np.int64) * 104_729) % 300
    sequence = (offset + rank) * 2 + np.where(male, 1, 0)
    first17 = np.char.add(np.char.add(region.astype(str), birth_text), np.char.zfill(sequence.astype(str), 3))
    return np.char.add(first17, id_check_character(first17)).astype(object)


def make_mobile_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` distinct mainland mobile numbers (11 digits, 1[3-9]...)."""
    numbers = np.empty(0, dtype=np.int64)
    while len(numbers) < n:
        prefix = rng.choice(_MOBILE_PREFIXES, size=2 * n)
        candidates = prefix.astype(np.int64) * 100_000_000 + rng.integers(0, 100_000_000, size=2 * n)
        numbers = np.concatenate([numbers, candidates])
        _, first = np.unique(numbers, return_index=True)
        numbers = numbers[np.sort(first)]
    return numbers[:n].astype(str).astype(object)


def make_addresses(rng: np.random.Generator, city_index: np.ndarray) -> np.ndarray:
    """Draw a street address in each person's city, for example 杭州市高新区学府路88号3栋2单元501室."""
    n = len(city_index)
    parts = [
        CITY_NAMES[city_index],
        np.full(n, "市"),
        rng.choice(_DISTRICTS, size=n),
        rng.choice(_ROADS, size=n),
        rng.integers(1, 400, size=n).astype(str),
        np.full(n, "号"),
        rng.integers(1, 30, size=n).astype(str),
        np.full(n, "栋"),
        rng.integers(1, 6, size=n).astype(str),
        np.full(n, "单元"),
        (rng.integers(1, 33, size=n) * 100 + rng.integers(1, 5, size=n)).astype(str),
        np.full(n, "室"),
    ]
    address = parts[0]
    for part in parts[1:]:
        address = np.char.add(address, part)
    return address.astype(object)


def format_birth_dates(rng: np.random.Generator, birth: np.ndarray) -> np.ndarray:
    """Write each birth date as 1985年3月2日 (60 % of rows) or 19850302, so that ingest must read both."""
    day_count = birth.astype("datetime64[D]")
    months = day_count.astype("datetime64[M]")
    year = (months.astype(np.int64) // 12 + 1970).astype(str)
    month = (months.astype(np.int64) % 12 + 1).astype(str)
    day = ((day_count - months.astype("datetime64[D]")).astype(np.int64) + 1).astype(str)
    chinese = year
    for part in ("年", month, "月", day, "日"):
        chinese = np.char.add(chinese, part)
    compact = np.char.replace(day_count.astype(str), "-", "")
    return np.where(rng.random(len(birth)) < 0.6, chinese, compact).astype(object)


def luhn_complete(body: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit to digit strings (bank card numbers)."""
    digits = np.array([[int(ch) for ch in text] for text in body], dtype=np.int64)
    # Double every second digit counting from the right of the body, since the
    # check digit will take the rightmost position.
    doubled = digits[:, ::-1].copy()
    doubled[:, 0::2] *= 2
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return np.char.add(body.astype(str), check.astype(str)).astype(object)
