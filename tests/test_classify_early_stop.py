"""Early stopping under cosine warm restarts: judged at the end of a cycle only."""

import pytest
import torch

from lsdc.classify.engine import cycle_ends, should_stop


@pytest.mark.parametrize("t_0,t_mult,epochs", [(5, 1, 15), (3, 2, 21), (1, 1, 4)])
def test_cycle_ends_where_the_scheduler_restarts(t_0, t_mult, epochs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t_0, T_mult=t_mult)
    restarts = []
    for epoch in range(epochs):
        sched.step(epoch + 1)
        restarts.append(sched.T_cur == 0)  # the next epoch starts a new cycle
    assert [cycle_ends(e, t_0, t_mult) for e in range(epochs)] == restarts


def test_no_stop_right_after_a_warm_restart():
    # best at epoch 2 of a 5-epoch cycle, validation worse after the restart at 5:
    # the old rule stopped at epoch 6 (4 epochs back); now the second cycle runs out
    assert not any(should_stop(e, 2, 4, 5, 1) for e in range(3, 9))
    assert should_stop(9, 2, 4, 5, 1)
    assert not should_stop(9, 7, 4, 5, 1)  # a better epoch within the cycle
    assert should_stop(14, 9, 4, 5, 1)
