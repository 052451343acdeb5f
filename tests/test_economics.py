import numpy as np

from promolift.config import CampaignConfig
from promolift.economics import Economics


def _eco():
    cfg = CampaignConfig.from_dict({
        "outcomes": {"conversion": "binary", "spend": "continuous"},
        "economics": {"margin": 0.35},
        "arms": {"email": {"contact_cost": 0.1},
                 "coupon10": {"contact_cost": 0.1, "discount_rate": 0.1},
                 "freeship": {"contact_cost": 0.1, "cost_per_conversion": 6.0}},
    })
    return Economics.from_config(cfg)


def test_value_and_cost_by_hand():
    eco = _eco()
    # one customer; (P(conv), E[spend]) under control, email, coupon10, freeship
    pred = np.array([[[0.02, 2.0], [0.03, 3.0], [0.05, 5.0], [0.04, 4.0]]])
    value, cost = eco.value_cost(pred)
    # costs: email 0.1; coupon 0.1 + 0.1*5 = 0.6; freeship 0.1 + 6*0.04 = 0.34
    np.testing.assert_allclose(cost, [[0, 0.1, 0.6, 0.34]])
    # value: 0.35*(spend_k - 2) - cost_k
    np.testing.assert_allclose(value, [[0, 0.35 - 0.1, 0.35 * 3 - 0.6, 0.35 * 2 - 0.34]])


def test_realized_profit_by_hand():
    eco = _eco()
    Y = np.array([[1, 100.0], [0, 0.0], [1, 50.0], [1, 20.0]])
    t = np.array([0, 1, 2, 3])
    # control: 35; email: -0.1; coupon: 17.5 - 0.1 - 5; freeship: 7 - 0.1 - 6
    np.testing.assert_allclose(eco.realized_profit(Y, t), [35.0, -0.1, 12.4, 0.9])
