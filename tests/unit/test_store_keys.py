"""Key ranges used to read a prefix through the index."""

from __future__ import annotations

from minik.store.keys import prefix_end


def test_a_prefix_ends_just_after_its_last_character() -> None:
    assert prefix_end("/registry/pods/") == "/registry/pods0"


def test_an_empty_prefix_has_no_end() -> None:
    assert prefix_end("") is None
    assert prefix_end("\U0010ffff") is None


def test_a_prefix_ending_in_the_largest_code_point_ends_after_the_character_before_it() -> None:
    assert prefix_end("a\U0010ffff") == "b"


def test_a_prefix_end_skips_the_surrogate_range() -> None:
    assert prefix_end("x\ud7ff") == "x\ue000"
