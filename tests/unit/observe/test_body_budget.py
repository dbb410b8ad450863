import pytest

from corral.core.errors import RateLimited
from corral.entrypoints.otlp import BodyBudget


def test_budget_refuses_beyond_its_limit_but_always_admits_one_request():
    budget = BodyBudget(100)
    budget.take(80)
    with pytest.raises(RateLimited):
        budget.take(30)
    budget.give(80)
    budget.take(500)  # alone: admitted (the body limit, not the budget, bounds a single request)
    assert budget.used == 500
