"""Runs a command and prints, on one line, what make bench reports of it:
wall time, CPU time (user + system, from rusage), and its peak memory,
sampled every 20 ms from /proc: anonymous (what it allocated) and in all
(with the file pages it maps: LMDB's state file).

Usage: bench_measure.py COMMAND ARGS...   (its output goes to /dev/null)
"""
import resource
import subprocess
import sys
import time


def sample(pid, peak):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "VmRSS"):
                    peak[key] = max(peak.get(key, 0), int(value.split()[0]))
    except OSError:
        pass


t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = {}
while p.poll() is None:
    sample(p.pid, peak)
    time.sleep(0.02)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"rc={p.returncode} wall={wall:.3f} cpu={ru.ru_utime + ru.ru_stime:.3f} "
      f"anon_mb={peak.get('RssAnon', 0) / 1024:.1f} rss_mb={max(peak.get('VmRSS', 0), ru.ru_maxrss) / 1024:.1f}")
