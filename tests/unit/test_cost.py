"""The cost model's arithmetic (infra/cost.py, docs/deploy.md "What it costs")."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from infra import cost
from infra.cost import HOURS, HostModel, Lambda, PerMessage, Prices, Scenario


def test_capacity_is_what_fits_in_the_task_capped_by_max_accounts() -> None:
    # Given 8 GB tasks with an 800 MB host, When each account needs 500 MB, Then 14 fit: floor(7392 / 500)
    assert HostModel("x", account_mb=500, base_mb=800, vcpu=2, memory_gb=8).capacity() == 14
    # And the measured wa_sim model is capped at the 200 accounts measured (254 would fit)
    assert cost.WA_SIM.capacity() == 200
    # And hosts = ceil(numbers / capacity), never fewer than two
    assert cost.WHATSAPP_WEB_500.hosts(1000) == math.ceil(1000 / 14) == 72
    assert cost.WHATSAPP_WEB_500.hosts(1) == 2


def test_fargate_is_hosts_times_hours_times_task_size() -> None:
    p = Prices()
    result = cost.monthly(Scenario(1000, 0, 0, cost.WHATSAPP_WEB_500))
    assert result["fargate"] == pytest.approx(72 * HOURS * (2 * p.fargate_vcpu_hour + 8 * p.fargate_gb_hour))
    assert result["fargate"] == pytest.approx(6124.29, abs=0.01)


def test_one_message_costs_its_units_at_list_price() -> None:
    # Given one API request, two 1 GB-s invocations, 4 writes, 8 reads, 10 SQS requests, 1 publish, 1 MB of logs
    usage = PerMessage(apigw_requests=1, invocations=(Lambda(1024, 1000), Lambda(1024, 1000)), write_units=4,
                       read_units=8, sqs_requests=10, sns_publishes=1, s3_puts=0, log_kb=1024)
    expected = (3.5e-6 + 2 * 0.2e-6 + 2 * 0.0000166667 + 4 * 0.625e-6 + 8 * 0.125e-6 + 10 * 0.4e-6 + 0.5e-6
                + 0.50 / 1024 + 2 * 5e-6)
    assert cost.usage_cost(usage, Prices()) == pytest.approx(expected)


def test_events_cost_two_invocations_and_a_publish_each() -> None:
    usage = cost.event_usage(3, targets=2)
    assert len(usage.invocations) == 6 and usage.sns_publishes == 3
    assert usage.write_units == 3 * (3 * 2 + 2)


def test_the_total_is_the_sum_of_its_lines_and_messages_scale_linearly() -> None:
    one = cost.monthly(Scenario(100, 1000, 1000))
    two = cost.monthly(Scenario(100, 2000, 2000))
    assert one["total"] == pytest.approx(one["fargate"] + one["messages"] + one["background"] + one["fixed"])
    assert two["messages"] == pytest.approx(2 * one["messages"])
    assert two["fargate"] == one["fargate"] and two["background"] == one["background"]


def test_meta_charges_only_templates_outside_the_window() -> None:
    rates = cost.MetaRates("X", marketing=0.05, utility=0.01, authentication=0.02)
    # 10 numbers x 1000 sends: 20 % marketing, 30 % utility outside the window, the rest free replies
    assert cost.meta_monthly(10, 1000, rates, 0.2, 0.3) == pytest.approx(10_000 * (0.2 * 0.05 + 0.3 * 0.01))


def test_the_tables_have_a_row_per_size() -> None:
    assert len(cost.table((10, 100)).splitlines()) == 4
    assert "India" in cost.meta_table((10,)).splitlines()[0]


def test_docs_show_the_current_tables() -> None:
    # docs/deploy.md pastes `python -m infra.cost`'s tables: a changed input must be re-pasted
    deploy = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    assert cost.table() in deploy
    assert cost.meta_table() in deploy
