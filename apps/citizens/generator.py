"""Random imports for ``/generate/{count}``, always valid for POST /imports.

Every rule of an import holds: the current field names, distinct mutual relatives that are
never the citizen itself, real birth dates. ``worst=True`` gives the largest payload the task
allows: every string 256 × "ё", ids and apartments near 2^31−1.
"""
from __future__ import annotations

import random
from datetime import date, timedelta
from math import isqrt
from typing import Any

MAX_COUNT = 10_000
MAX_RELATIONS = 50_000
DEFAULT_RELATIONS = 1000  # the spec's largest import has 1000 pairs
EARLIEST_BIRTH = date(1930, 1, 1)
WORST_STRING = "ё" * 256
WORST_ID = 2 ** 31 - 1
TOWNS = ("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Керчь",
         "Нижний Новгород", "Самара", "Омск", "Ростов-на-Дону")
STREETS = ("Льва Толстого", "Ленина", "Садовая", "Пушкина", "Мира", "Гагарина", "Лесная",
           "Школьная", "Советская", "Набережная")
NAMES = {
    "male": (("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов"),
             ("Иван", "Сергей", "Алексей", "Дмитрий", "Андрей"),
             ("Иванович", "Сергеевич", "Петрович", "Олегович", "Романович")),
    "female": (("Иванова", "Петрова", "Смирнова", "Кузнецова", "Попова"),
               ("Мария", "Анна", "Елена", "Ольга", "Наталья"),
               ("Ивановна", "Сергеевна", "Леонидовна", "Олеговна", "Романовна")),
}


def default_relations(count: int) -> int:
    return min(DEFAULT_RELATIONS, count // 2)


def max_relations(count: int) -> int:
    """The most distinct pairs of different citizens, capped to keep the response sane."""
    return min(MAX_RELATIONS, count * (count - 1) // 2)


def generate(count: int, relations: int, rng: random.Random, today: date,
             worst: bool = False) -> list[dict[str, Any]]:
    """``count`` citizens linked by ``relations`` distinct mutual, non-self pairs."""
    days = (today - EARLIEST_BIRTH).days
    citizens = []
    for index in range(count):
        gender = rng.choice(("male", "female"))
        born = EARLIEST_BIRTH + timedelta(days=rng.randint(0, days))
        if worst:
            citizen_id, town, street, building, apartment, name = (
                WORST_ID - index, WORST_STRING, WORST_STRING, WORST_STRING, WORST_ID,
                WORST_STRING)
        else:
            citizen_id = index + 1
            town, street = rng.choice(TOWNS), rng.choice(STREETS)
            building = f"{rng.randint(1, 200)}к{rng.randint(1, 9)}стр{rng.randint(1, 5)}"
            apartment = rng.randint(1, 500)
            name = " ".join(rng.choice(part) for part in NAMES[gender])
        citizens.append({
            "citizen_id": citizen_id, "town": town, "street": street, "building": building,
            "apartment": apartment, "name": name, "birth_date": born.strftime("%d.%m.%Y"),
            "gender": gender, "relatives": [],
        })
    for first, second in random_pairs(count, relations, rng):
        citizens[first]["relatives"].append(citizens[second]["citizen_id"])
        citizens[second]["relatives"].append(citizens[first]["citizen_id"])
    return citizens


def random_pairs(count: int, pairs: int, rng: random.Random) -> list[tuple[int, int]]:
    """``pairs`` distinct index pairs (i < j) drawn uniformly, without rejection sampling.

    Pairs are numbered k = j(j-1)/2 + i, so sampling numbers from range(count(count-1)/2)
    samples pairs, and j is recovered from k with an integer square root.
    """
    result = []
    for k in rng.sample(range(count * (count - 1) // 2), pairs):
        j = (1 + isqrt(1 + 8 * k)) // 2
        result.append((k - j * (j - 1) // 2, j))
    return result
