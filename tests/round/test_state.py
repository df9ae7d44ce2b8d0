from langgraph.graph import END

from evoforge.round.state import after_critique, after_promote, after_select


def test_after_critique():
    assert after_critique({"failed": 3, "active": 3}) == "expand"
    assert after_critique({"failed": 0, "active": 0}) == "pairs"
    assert after_critique({"failed": 2, "active": 0}) == "pairs"


def test_after_select():
    assert after_select({"active": 2, "level": 1}, max_depth=3) == "expand"
    assert after_select({"active": 2, "level": 3}, max_depth=3) == "pairs"
    assert after_select({"active": 0, "level": 1}, max_depth=3) == "pairs"


def test_after_promote():
    assert after_promote({"round": 1, "rounds": 2}) == "plan"
    assert after_promote({"round": 2, "rounds": 2}) == END
    assert after_promote({"round": 1, "rounds": 5, "stop": True}) == END
