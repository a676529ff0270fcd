"""Issue 18: in cluster mode the console's metrics screen shows the nodes (health, load,
capacity, served) and what each gateway served; on one machine it shows no such line."""

from __future__ import annotations

from console_waits import screen_text, settle, until

NODES = [
    {"node": "worker-1", "health": "up", "load": 1, "capacity": 4, "served": 7, "runtimes": ["python"]},
    {"node": "worker-2", "health": "down", "load": 0, "capacity": 4, "served": 2, "runtimes": ["python"]},
]


async def test_the_metrics_screen_shows_cluster_nodes_and_gateways(fake, make_app):
    real = fake.metrics

    async def metrics(function=None):
        snap = await real(function)
        snap["nodes"] = NODES
        snap["gateways"] = {"gw-a": 3, "gw-b": 6}
        return snap

    fake.metrics = metrics
    app = make_app(fake)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot, app)
        app.screen.action_metrics()
        await until(pilot, lambda: any("cluster nodes" in line for line in screen_text(app)), "the nodes line")
        text = "\n".join(screen_text(app))
        assert "worker-1 up 1/4 served 7" in text and "worker-2 down 0/4 served 2" in text, text
        assert "gw-a 3" in text and "gw-b 6" in text, text


async def test_one_machine_shows_no_cluster_line(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot, app)
        app.screen.action_metrics()
        await until(pilot, lambda: any("all functions" in line for line in screen_text(app)), "the metrics screen")
        assert not any("cluster nodes" in line for line in screen_text(app))
