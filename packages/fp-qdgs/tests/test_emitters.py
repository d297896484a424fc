from __future__ import annotations

import numpy as np
from ribs.archives import GridArchive
from ribs.emitters import GradientArborescenceEmitter

from fp_qdgs import QDGSArborescenceEmitter


def _archive():
    return GridArchive(
        solution_dim=3, dims=(5, 5), ranges=((-1, 1), (-1, 1)), learning_rate=0.1, threshold_min=0.0, seed=0
    )


def _one_rejected_iteration(cls, restart_rule="basic"):
    archive = _archive()
    archive.add(np.zeros((1, 3)), np.array([10.0]), np.zeros((1, 2)))  # an elite to restart from
    x0 = np.array([3.0, -2.0, 1.0])
    emitter = cls(
        archive,
        x0=x0,
        sigma0=0.5,
        lr=0.5,
        selection_rule="filter",
        restart_rule=restart_rule,
        batch_size=4,
        seed=0,
    )
    point = emitter.ask_dqd()
    jac = np.eye(3)[None]  # [1, k + 1 = 3, n = 3]
    emitter.tell_dqd(
        point, np.array([1.0]), np.zeros((1, 2)), jac, {"status": np.zeros(1), "value": np.zeros(1)}
    )
    sols = emitter.ask()
    objective = -np.arange(1.0, 5.0)  # distinct, so CMA-ES's flat-fitness stop does not fire
    rejected = {"status": np.zeros(4, dtype=np.int32), "value": objective}
    emitter.tell(sols, objective, np.zeros((4, 2)), rejected)
    return x0, emitter


def test_ribs_filter_pulls_the_point_towards_the_origin():
    # The trap this package closes: nothing accepted -> ribs steps theta by (0 - theta).
    x0, emitter = _one_rejected_iteration(GradientArborescenceEmitter)
    theta = emitter.ask_dqd()[0]
    assert emitter.restarts == 0
    assert np.all(np.abs(theta) < np.abs(x0))  # every coordinate moved towards 0


def test_qdgs_emitter_keeps_the_point_when_filter_finds_no_parents():
    x0, emitter = _one_rejected_iteration(QDGSArborescenceEmitter)
    np.testing.assert_array_equal(emitter.ask_dqd()[0], x0)
    assert emitter.empty_filter_iterations == 1 and emitter.restarts == 0


def test_no_improvement_restart_still_restarts_from_an_elite():
    _, emitter = _one_rejected_iteration(QDGSArborescenceEmitter, restart_rule="no_improvement")
    assert emitter.restarts == 1 and emitter.empty_filter_iterations == 0
    np.testing.assert_array_equal(emitter.ask_dqd()[0], np.zeros(3))  # the only elite


def test_restart_on_an_empty_archive_goes_back_to_x0():
    archive = _archive()
    x0 = np.array([1.0, 2.0, 3.0])
    emitter = QDGSArborescenceEmitter(
        archive, x0=x0, sigma0=0.5, lr=0.5, selection_rule="mu", restart_rule=1, batch_size=4, seed=0
    )
    point = emitter.ask_dqd()
    emitter.tell_dqd(
        point,
        np.array([-1.0]),
        np.zeros((1, 2)),
        np.eye(3)[None],
        {"status": np.zeros(1), "value": -np.ones(1)},
    )
    sols = emitter.ask()
    emitter.tell(
        sols, -np.ones(4), np.zeros((4, 2)), {"status": np.zeros(4, dtype=np.int32), "value": -np.ones(4)}
    )
    assert emitter.restarts == 1
    np.testing.assert_array_equal(emitter.ask_dqd()[0], x0)
