"""The series endpoint of the dashboard's charts: downsampled buckets, rollups and raw samples
read together, bad input refused, and the cluster permissions followed."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import series
from clusters.models import Environment, Node, Sample, SampleRollup
from tests.clusters._dashboard import _pg_cluster


def _node() -> Node:
    env = Environment.objects.create(name="prod")
    return Node.objects.get(name="s1-s", cluster=_pg_cluster("s1", env))


def _series(client, **params):
    return client.get(reverse("clusters:series"), params)


@pytest.mark.django_db
def test_a_day_of_samples_is_downsampled_to_five_minute_buckets(client, dba):
    node, now = _node(), timezone.now().replace(microsecond=0)
    Sample.objects.bulk_create(
        Sample(node=node, metric="replication.replay_lag_bytes",
               ts=now - timedelta(seconds=30 * i), value=float(i % 10))
        for i in range(2880)
    )  # fmt: skip
    client.force_login(dba)
    answer = _series(client, node=node.pk, metric="replication.replay_lag_bytes", range="24h")
    data = answer.json()
    assert answer.status_code == 200 and data["step_s"] == 300 and data["unit"] == "bytes"
    assert 288 <= len(data["points"]) <= 290  # 24 h of 5 min buckets, the ends partial
    assert all(v == 9.0 for _, v in data["points"][1:-1])  # "max" per bucket for a lag
    times = [t for t, _ in data["points"]]
    assert times == sorted(times) and all(t % 300_000 == 0 for t in times)
    hour = _series(client, node=node.pk, metric="replication.replay_lag_bytes", range="1h")
    assert 119 <= len(hour.json()["points"]) <= 121  # 30 s samples in 30 s buckets


@pytest.mark.django_db
def test_thirty_days_read_rollups_and_raw_samples_together(client, dba):
    node, now = _node(), timezone.now().replace(minute=0, second=0, microsecond=0)
    SampleRollup.objects.bulk_create(
        SampleRollup(node=node, metric="connections.active", hour=now - timedelta(hours=h),
                     min=0, max=8, avg=4.0, count=120)
        for h in range(200, 700)
    )  # fmt: skip
    Sample.objects.bulk_create(
        Sample(node=node, metric="connections.active", ts=now - timedelta(minutes=m), value=2.0)
        for m in range(0, 600, 1)
    )  # fmt: skip
    client.force_login(dba)
    data = _series(client, node=node.pk, metric="connections.active", range="30d").json()
    assert data["step_s"] == 7200 and len(data["points"]) <= 360
    values = {v for _, v in data["points"]}
    assert values == {4.0, 2.0}  # averages: hours of rollups, then raw minutes
    old = [t for t, v in data["points"] if v == 4.0]
    assert max(old) < min(t for t, v in data["points"] if v == 2.0)
    # the same buckets computed in Python, for databases other than PostgreSQL
    since = now - timedelta(days=30)
    in_sql = series._buckets_sql(node.pk, "connections.active", since, 7200)
    in_python = series.buckets_python(node.pk, "connections.active", since, 7200)
    assert [(int(t), round(a, 6)) for t, a, *_ in in_sql] == [
        (int(t), round(a, 6)) for t, a, *_ in in_python
    ]


@pytest.mark.django_db
def test_the_series_endpoint_refuses_bad_input_and_unknown_nodes(client, dba):
    node = _node()
    client.force_login(dba)
    answer = _series(client, node=node.pk, metric="no.such.metric", range="1h")
    assert answer.status_code == 400 and "metric" in answer.json()["errors"]
    answer = _series(client, node=node.pk, metric="up", range="2y")
    assert answer.status_code == 400 and "range" in answer.json()["errors"]
    answer = _series(client, node="db1", metric="up")
    assert answer.status_code == 400 and "node" in answer.json()["errors"]
    assert _series(client, node=99999, metric="up").status_code == 404
    assert client.post(reverse("clusters:series"), {"node": node.pk}).status_code == 405


@pytest.mark.django_db
def test_the_series_endpoint_follows_the_cluster_permissions(client, helpdesk, manager):
    node = _node()
    assert _series(client, node=node.pk, metric="up").status_code == 302
    client.force_login(helpdesk)
    assert _series(client, node=node.pk, metric="up").status_code == 403
    client.force_login(manager)
    assert _series(client, node=node.pk, metric="up").json()["points"] == []
