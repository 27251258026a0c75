"""Levenshtein distance, shared by the attack scripts (ocr_check.py, cnn_check.py)."""


def edit_distance(a, b):
    """The fewest substitutions, insertions and deletions that turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[len(b)]
