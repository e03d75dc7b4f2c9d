"""Failures never hang: a worker SIGKILLed mid-step makes the others raise within the
timeout naming its rank and the launcher exit non-zero; a hung or stopped peer, or ranks
calling different collectives, raise a DistributedError naming the rank; the launcher
shows a failed worker's traceback, stops everyone on Ctrl-C, and leaves no segment."""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from dist_util import ROOT, env, launch, start_by_hand, write_script
from tinyfw.distributed._segment import pid_alive, shm_dir

# survivors print how long after the kill they raised, and which rank they blamed
LOOP = """
x = tf.ones(20000)
dist.all_reduce(x)
if r == 1:
    time.sleep(0.3)
    t_kill = time.time()
    os.kill(os.getpid(), signal.SIGKILL)
t0 = time.time()
try:
    for i in range(100000):
        dist.all_reduce(x)
except dist.DistributedError as e:
    print(f"raised blame={e.rank} after={time.time() - t0:.2f} msg={e}", flush=True)
    sys.exit(3)
"""


def _finish(procs, timeout=30):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        outs.append((p.returncode, out, err))
    return outs


def test_sigkill_mid_step_survivors_raise_naming_the_rank(tmp_path):
    script = write_script(tmp_path, LOOP)
    start = time.time()
    outs = _finish(start_by_hand(3, script, DIST_TIMEOUT=30))
    assert outs[1][0] == -signal.SIGKILL
    for r in (0, 2):
        code, out, err = outs[r]
        assert code == 3, out + err
        assert "raised blame=1" in out and "rank 1" in out and "died" in out, out
        after = float(out.split("after=")[1].split()[0])
        assert after < 30  # within the timeout: death is seen from the pid, not waited out
    assert time.time() - start < 30


def test_launcher_exits_nonzero_when_a_worker_is_killed(tmp_path):
    script = write_script(tmp_path, LOOP)
    p = subprocess.Popen([sys.executable, "-m", "tinyfw.distributed.run", "--nproc", "2",
                          script], env=env(DIST_TIMEOUT=30), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGKILL, out + err
    assert "rank 1" in err and "SIGKILL" in err
    assert not glob.glob(os.path.join(shm_dir(), f"tinyfw-{p.pid}-*"))


def test_launcher_shows_the_traceback_and_exit_code(tmp_path):
    script = write_script(tmp_path, """
dist.barrier()
if r == 1:
    raise ValueError("boom on rank one")
dist.barrier()
""")
    proc = launch(2, script, DIST_TIMEOUT=30)
    assert proc.returncode == 1
    assert "rank 1" in proc.stderr and "exit code 1" in proc.stderr
    assert "traceback of rank 1" in proc.stderr and "ValueError: boom on rank one" in proc.stderr


def test_launcher_ctrl_c_stops_every_worker(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = write_script(tmp_path, f"""
open(os.path.join({str(pids)!r}, str(os.getpid())), "w").close()
dist.barrier()
time.sleep(600)
""")
    # started with SIGINT ignored, as a background job (`cmd &`) is: the launcher must
    # still stop on it
    p = subprocess.Popen([sys.executable, "-m", "tinyfw.distributed.run", "--nproc", "2",
                          script], env=env(DIST_TIMEOUT=30), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 30
    while len(os.listdir(pids)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(pids)) == 2
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGINT, err
    assert "SIGINT received" in err
    assert not any(pid_alive(int(q)) for q in os.listdir(pids))


def test_hung_peer_times_out_naming_it(tmp_path):
    script = write_script(tmp_path, """
if r == 1:
    time.sleep(3)  # alive but never joins the collective
    sys.exit(0)
t0 = time.time()
try:
    dist.all_reduce(tf.ones(10))
except dist.DistributedError as e:
    print(f"raised blame={e.rank} after={time.time() - t0:.2f} msg={e}", flush=True)
    sys.exit(3)
""")
    outs = _finish(start_by_hand(2, script, DIST_TIMEOUT=1))
    code, out, err = outs[0]
    assert code == 3, out + err
    assert "blame=1" in out and "timed out after 1 s waiting for rank 1" in out
    assert 0.9 < float(out.split("after=")[1].split()[0]) < 3


@pytest.mark.slow
def test_stopped_peer_is_not_responding(tmp_path):
    script = write_script(tmp_path, """
dist.barrier()
if r == 1:
    os.kill(os.getpid(), signal.SIGSTOP)
try:
    dist.all_reduce(tf.ones(10))
except dist.DistributedError as e:
    print(f"raised blame={e.rank} msg={e}", flush=True)
    sys.exit(3)
""")
    procs = start_by_hand(2, script, DIST_TIMEOUT=60, TINYFW_DIST_HEARTBEAT_TIMEOUT=1)
    try:
        out, err = procs[0].communicate(timeout=30)
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode == 3, out + err
    assert "blame=1" in out and "not responding" in out


def test_different_collectives_are_an_error_not_garbage(tmp_path):
    script = write_script(tmp_path, """
t = tf.ones(100)
try:
    if r == 0:
        dist.all_reduce(t)
    else:
        dist.broadcast(t, src=1)
except dist.DistributedError as e:
    print(f"raised blame={e.rank} msg={e}", flush=True)
    sys.exit(3)
""")
    outs = _finish(start_by_hand(2, script, DIST_TIMEOUT=10))
    msgs = " ".join(o[1] for o in outs)
    assert any(o[0] == 3 for o in outs), outs
    assert "different collectives" in msgs


def test_a_forked_child_exiting_does_not_take_the_rank_away(tmp_path):
    # a DataLoader worker is a fork of a rank; its atexit must not mark the rank as gone
    script = write_script(tmp_path, """
import atexit
if r == 0:
    pid = os.fork()
    if pid == 0:
        atexit._run_exitfuncs()  # what a child leaving through sys.exit would run
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.5)  # rank 1 waits, checking on rank 0 every 50 ms
x = tf.ones(1000)
dist.all_reduce(x)
assert x.tolist() == [float(n)] * 1000
print("ok", flush=True)
""")
    outs = _finish(start_by_hand(2, script, DIST_TIMEOUT=10))
    assert all(code == 0 and "ok" in out for code, out, _ in outs), outs
