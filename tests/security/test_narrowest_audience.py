"""`narrowest_audience`: the marking every derived object (sighting, candidate campaign) takes.

Written from the rule, not from the code: a derived object is never readable by someone
who could not read every input it repeats."""

from __future__ import annotations

from shieldwall.stix.markings import TLP, narrowest_audience


def test_open_inputs_keep_the_floor_and_no_audience() -> None:
    assert narrowest_audience([], TLP.AMBER) == (TLP.AMBER, None)
    assert narrowest_audience([(TLP.GREEN, (), "latvia")], TLP.AMBER) == (TLP.AMBER, None)
    assert narrowest_audience([(TLP.CLEAR, (), "x")], TLP.CLEAR) == (TLP.CLEAR, None)


def test_the_most_restrictive_level_wins() -> None:
    level, _ = narrowest_audience([(TLP.GREEN, (), "a"), (TLP.RED, ("b",), "a")], TLP.AMBER)
    assert level is TLP.RED


def test_named_inputs_leave_only_the_members_every_one_names() -> None:
    inputs = [(TLP.RED, ("latvia", "cell"), "latvia"), (TLP.RED, ("estonia", "cell"), "estonia")]
    assert narrowest_audience(inputs, TLP.AMBER) == (TLP.RED, ("cell",))


def test_the_deliverer_of_a_named_input_counts_as_named() -> None:
    # latvia produced a RED indicator for estonia: estonia's sighting of it goes back to latvia.
    assert narrowest_audience([(TLP.RED, ("estonia",), "latvia")], TLP.AMBER) == (
        TLP.RED, ("estonia", "latvia"))


def test_strict_input_without_audience_is_held_by_its_deliverer_only() -> None:
    assert narrowest_audience([(TLP.AMBER_STRICT, (), "latvia")], TLP.GREEN) == (
        TLP.AMBER_STRICT, ("latvia",))
    # and two such inputs from different members leave nobody but the creator
    assert narrowest_audience([(TLP.RED, (), "latvia"), (TLP.RED, (), "estonia")],
                              TLP.AMBER) == (TLP.RED, ())
