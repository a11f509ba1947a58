import shipyard


def test_all_is_exactly_the_public_names():
    assert shipyard.__all__ == sorted(shipyard.__all__, key=str)
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None
    public = {n for n in dir(shipyard) if not n.startswith("_")} | {"__version__"}
    assert set(shipyard.__all__) == public
