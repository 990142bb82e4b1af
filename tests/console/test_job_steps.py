"""Step jobs (clusters.provision.steps): the plan, skips by check, the first failure stops the
job and names what was done, a re-run resumes, and the job page lists the steps."""

import pytest
from django.urls import reverse

from clusters.provision.steps import Step, StepFailed, run_steps
from console import jobs
from console.errors import ExpectedFailure
from console.jobs import JobContext, job_task
from console.models import Job, JobStep


class World:
    """Stands for a server: a set of things that exist, and a fault to inject."""

    def __init__(self, present=(), broken=None):
        self.present = set(present)
        self.broken = broken
        self.applied: list[str] = []


WORLDS: dict[int, World] = {}


def _steps(world: World) -> list[Step]:
    def make(thing):
        def check(ctx):
            return f"{thing} is there" if thing in world.present else False

        def apply(ctx):
            if world.broken == thing:
                raise StepFailed(f"cannot make {thing}: port 5432 already in use")
            world.applied.append(thing)
            world.present.add(thing)
            return f"made {thing}"

        return Step(f"Make {thing}", check, apply)

    return [make("a"), make("b"), make("c")]


@job_task("tests.steps")
def steps_job(ctx: JobContext) -> dict:
    outcomes = run_steps(ctx, _steps(WORLDS[ctx.job.params["world"]]))
    return {"steps": [o.as_dict() for o in outcomes]}


def _job(world_id: int, user=None) -> Job:
    return Job.objects.create(
        kind="tests.steps", title="steps", params={"world": world_id}, user=user
    )


def _states(job: Job) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in job.steps.order_by("position")]


@pytest.mark.django_db
def test_all_steps_run_in_order_and_are_recorded_done():
    WORLDS[1] = world = World()
    job = _job(1)
    assert jobs.run_job(job.pk, steps_job.body) == Job.Status.SUCCEEDED
    assert world.applied == ["a", "b", "c"]
    assert _states(job) == [("Make a", "done"), ("Make b", "done"), ("Make c", "done")]
    step = job.steps.get(position=1)
    assert step.detail == "made a" and step.started <= step.ended
    job.refresh_from_db()
    assert job.progress == 100
    assert [s["status"] for s in job.result["steps"]] == ["done"] * 3


@pytest.mark.django_db
def test_a_step_already_done_is_skipped_with_what_its_check_found():
    WORLDS[2] = world = World(present={"b"})
    job = _job(2)
    assert jobs.run_job(job.pk, steps_job.body) == Job.Status.SUCCEEDED
    assert world.applied == ["a", "c"]
    assert _states(job)[1] == ("Make b", "skipped")
    assert job.steps.get(position=2).detail == "b is there"


@pytest.mark.django_db
def test_the_first_failure_stops_the_job_names_the_step_and_what_was_done():
    WORLDS[3] = world = World(broken="b")
    job = _job(3)
    assert jobs.run_job(job.pk, steps_job.body) == Job.Status.FAILED
    assert world.applied == ["a"]  # c was never tried
    assert _states(job) == [("Make a", "done"), ("Make b", "failed"), ("Make c", "pending")]
    assert "port 5432 already in use" in job.steps.get(position=2).detail
    job.refresh_from_db()
    assert 'Step 2 "Make b" failed: cannot make b: port 5432 already in use' in job.error
    assert "Already done: Make a." in job.error


@pytest.mark.django_db
def test_a_rerun_after_the_fix_resumes_at_the_failed_step(dba, django_capture_on_commit_callbacks):
    WORLDS[4] = world = World(broken="b")
    first = _job(4, user=dba)
    assert jobs.run_job(first.pk, steps_job.body) == Job.Status.FAILED
    first.refresh_from_db()
    world.broken = None  # the operator fixed the cause
    with django_capture_on_commit_callbacks(execute=False) as sent:
        second = jobs.rerun(first, user=dba)
    assert len(sent) == 1
    assert second.params == {"world": 4, "rerun_of": first.pk}
    assert jobs.run_job(second.pk, steps_job.body) == Job.Status.SUCCEEDED
    assert world.applied == ["a", "b", "c"]  # a was not made twice
    assert _states(second) == [("Make a", "skipped"), ("Make b", "done"), ("Make c", "done")]


@pytest.mark.django_db
def test_only_a_failed_job_with_steps_is_rerun(dba):
    WORLDS[5] = World()
    done = _job(5, user=dba)
    jobs.run_job(done.pk, steps_job.body)
    done.refresh_from_db()
    with pytest.raises(ExpectedFailure, match="only a failed job"):
        jobs.rerun(done, user=dba)
    plain = Job.objects.create(kind="tests.steps", title="x", status=Job.Status.FAILED)
    with pytest.raises(ExpectedFailure, match="no steps"):
        jobs.rerun(plain, user=dba)


@pytest.mark.django_db
def test_a_step_whose_check_still_fails_after_apply_fails():
    def body(ctx):
        run_steps(ctx, [Step("Never sticks", lambda ctx: False, lambda ctx: "tried")])

    job = _job(0)
    assert jobs.run_job(job.pk, body) == Job.Status.FAILED
    step = job.steps.get()
    assert step.status == "failed"
    assert "its check still finds the work not done" in step.detail


@pytest.mark.django_db
def test_a_bug_in_a_step_marks_it_failed_and_the_job_errored():
    def body(ctx):
        run_steps(ctx, [Step("Buggy", None, lambda ctx: 1 / 0)])

    job = _job(0)
    assert jobs.run_job(job.pk, body) == Job.Status.ERRORED
    assert job.steps.get().detail == "internal error: ZeroDivisionError"


@pytest.mark.django_db
def test_two_step_lists_in_one_job_keep_their_places():
    def body(ctx):
        run_steps(ctx, [Step("First", None, lambda ctx: None)])
        run_steps(ctx, [Step("Second", None, lambda ctx: None)])

    job = _job(0)
    assert jobs.run_job(job.pk, body) == Job.Status.SUCCEEDED
    assert _states(job) == [("First", "done"), ("Second", "done")]


@pytest.mark.django_db
def test_secrets_in_a_step_detail_are_redacted():
    def body(ctx):
        run_steps(ctx, [Step("Leaky", None, lambda ctx: "ran psql password=hunter2hunter2")])

    job = _job(0)
    jobs.run_job(job.pk, body)
    assert "hunter2" not in job.steps.get().detail


@pytest.mark.django_db
def test_the_job_page_and_its_live_part_list_the_steps(client, dba):
    WORLDS[6] = World(broken="c")
    job = _job(6, user=dba)
    jobs.run_job(job.pk, steps_job.body)
    client.force_login(dba)
    for name in ("job_detail", "job_live"):
        page = client.get(reverse(name, args=[job.pk])).content.decode()
        assert '<ol class="job-steps">' in page
        assert page.index("Make a") < page.index("Make b") < page.index("Make c")
        assert 'data-status="failed"' in page and "port 5432 already in use" in page
    no_steps = Job.objects.create(kind="tests.echo", title="plain", user=dba)
    assert "job-steps" not in client.get(reverse("job_live", args=[no_steps.pk])).content.decode()
    assert JobStep.objects.filter(job=no_steps).count() == 0
