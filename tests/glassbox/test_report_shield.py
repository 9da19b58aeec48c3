"""The run report shows how often the runtime shield intervened on holdout, as export measured it."""

import pytest

from scriptrl.envs import resolve_env
from scriptrl.program import Program

pytest.importorskip("z3")  # the shield's properties are checked by the prove package

CARTPOLE = resolve_env("CartPole-v1")
PD = (
    "    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity\n"
    "    return 1 if push > 0 else 0\n"
)
#: Pushes right whenever the pole leans and falls left: the property below catches exactly that.
RECKLESS = (
    "def policy(obs):\n    position, velocity, angle, angular_velocity = obs\n"
    "    if angle < -0.02 and angular_velocity < 0:\n        return 1\n" + PD
)
PUSH_LEFT = "action == 0 or 10*obs[2] + 2*obs[3] + 0.1*obs[0] + 0.3*obs[1] > 0"


def _run(tmp_path):
    from scriptrl.evaluate import evaluate
    from scriptrl.store import RunStore

    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, {"env_id": "CartPole-v1"}) as store:
        pid = store.add_program(
            RECKLESS, Program(RECKLESS).normalized_hash, [], "manual", "test", 0.0, None, 0
        )
        store.add_evaluation(
            pid, "holdout", "confirm", evaluate(Program(RECKLESS), CARTPOLE, list(range(1000, 1005)))
        )
    return run_dir, pid


def test_malformed_shield_events_are_skipped_not_a_crash():
    from scriptrl.glassbox.report.shield import shield_rows

    class _Store:
        def events(self, kind):
            assert kind == "shield"
            return [{"created": 1.0, "data": {"interventions": "many"}}]  # malformed: skipped, not a crash

    assert shield_rows(_Store()) == []


@pytest.mark.slow
def test_the_report_shows_the_holdout_interventions_export_measured(tmp_path):
    from scriptrl.glassbox.export import export_policy
    from scriptrl.glassbox.report.html import build_report
    from scriptrl.store import RunStore

    run_dir, pid = _run(tmp_path)
    before = build_report(run_dir)
    assert 'id="shield"' in before and "No shielded export yet" in before
    props = tmp_path / "shield.toml"
    props.write_text(f'fallback = 0\n[[property]]\nname = "push left"\nexpr = "{PUSH_LEFT}"\n')
    out = export_policy(run_dir, tmp_path / "shielded.py", program_id=pid, shield=str(props))
    card = next(line for line in out.read_text().splitlines() if line.startswith("# shield:"))
    n, steps = int(card.split("intervened at ")[1].split()[0]), int(card.split(" of ")[1].split()[0])
    assert 0 < n < steps
    with RunStore.open(run_dir) as store:
        (event,) = store.events("shield")
    assert event["data"]["interventions"] == n and event["data"]["steps"] == steps
    assert event["data"]["program"] == pid and event["data"]["seeds"] == [1000, 1019]
    html = build_report(run_dir)
    section = html.split('id="shield"')[1].split("</section>")[0]
    assert "No shielded export yet" not in section and "push left" in section
    assert f'<td class="num">{n}</td><td class="num">{steps}</td>' in section
    assert f"{100.0 * n / steps:.2f} %" in section and "1000–1019" in section
