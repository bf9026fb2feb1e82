"""The exports worker's figures, in one run, at two sizes (100,000 and 1,000,000
facts by default):

- rows/s and MB/s of an export through the worker's SQS handler into S3 (moto's
  server, over HTTP, in a process of its own; and into an S3 that discards the
  parts, which is what the stream itself costs), beside the same
  ``COPY (SELECT … export_attempt_rows(…)) TO STDOUT`` read on a raw connection
  under the same RLS context and thrown away (the honest floor: no S3);
- the worker's peak RSS at each size, each export in a fresh process: the
  resident set sampled every 5 ms during the export, beside it before the export
  (the function imported, as after a cold start), and the process's lifetime
  peak (``VmHWM``, which the import's transient peak may set; not ``ru_maxrss``,
  which Linux carries over an exec from the parent: it showed this benchmark's
  own ~110 MiB); memory stays flat when the 1M export's peak is within 10 % of
  the 100k one's.

Run: `python -m bench exports [--sizes 100000 1000000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from bench.common import bench_database, print_table, use_function_environment

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "practice-bench-exports"
USERS, SCENARIOS = 100, 10
FILTERS = {"from": "2025-01-01", "to": "2025-12-31"}
ENTER = "select practice_enter(%s::uuid, %s::text, 'admin', '900s')"
RAW = (
    "copy (select * from export_attempt_rows(%s, %s, null, null, null))"
    " to stdout (format csv, header)"
)

# The worker, in a child of its own: import the function, run one export
# through its SQS handler, report time, size and memory.
_CHILD = """
import json, sys, threading, time

export_id, org_id, storage = sys.argv[1], sys.argv[2], sys.argv[3]
import functions.exports.app as app  # only what Lambda imports


class Discard:  # S3 that keeps nothing: the stream's own cost
    def create_multipart_upload(self, **_):
        return {"UploadId": "discard"}

    def upload_part(self, **_):
        return {"ETag": "discard"}

    def complete_multipart_upload(self, **_):
        return {}

    def abort_multipart_upload(self, **_):
        return {}


if storage == "discard":
    app.export_worker.s3_override = Discard()


class Context:  # what the runtime passes: the worker reads its remaining time
    function_name, memory_limit_in_mb, aws_request_id = "exports-worker", "1024", "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:exports-worker"
    deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


def rss_kb(field="VmRSS:"):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


app.db.pool.wait(timeout=10)
before_kb, peak = rss_kb(), [0]
done = threading.Event()


def sample():  # the resident set every 5 ms while the export runs
    while not done.wait(0.005):
        peak[0] = max(peak[0], rss_kb())


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
record = {"messageId": "bench", "receiptHandle": "bench", "md5OfBody": "",
          "body": json.dumps({"export_id": export_id, "org_id": org_id}),
          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
          "eventSource": "aws:sqs", "awsRegion": "us-east-1",
          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench"}
start = time.perf_counter()
answer = app.worker({"Records": [record]}, Context())
seconds = time.perf_counter() - start
done.set()
sampler.join()
last = app.export_worker.last
print(json.dumps({"answer": answer, "seconds": seconds, "status": last.status,
                  "rows": last.rows, "bytes": last.bytes, "parts": last.parts,
                  "before_kb": before_kb, "peak_kb": max(peak[0], rss_kb()),
                  "lifetime_peak_kb": rss_kb("VmHWM:")}))
app.db.close()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's server in a process of its own (it keeps every object in memory:
    in the worker's process it would count in the worker's RSS)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's server did not start")


def seed_org(admin_url: str, rows: int) -> tuple[uuid.UUID, str]:
    """An org with an admin, USERS members, SCENARIOS scenarios and ``rows`` facts in 2025."""
    tag = uuid.uuid4().hex[:8]
    admin = f"user_bench_admin_{tag}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        org = conn.execute(
            "insert into orgs (clerk_org_id, name) values (%s, %s) returning id",
            [f"org_bench_{tag}", f"Bench {tag}"],
        ).fetchone()[0]
        conn.execute(
            "insert into org_members (org_id, user_id, role, display_name, email)"
            " values (%s, %s, 'admin', 'Bench Admin', 'admin@bench.example')",
            [org, admin],
        )
        conn.execute(
            "insert into org_members (org_id, user_id, role, display_name, email)"
            " select %s, %s || i, 'trainee', 'Trainee ' || i, 't' || i || '@bench.example'"
            " from generate_series(0, %s - 1) as g(i)",
            [org, f"user_bench_{tag}_", USERS],
        )
        scenarios = [
            row[0]
            for row in conn.execute(
                "insert into scenarios (org_id, title, description, role, difficulty,"
                " instructions, context, visibility) select %s, 'Scenario, \"' || i || '\"',"
                " 'd', 'sales', 'beginner', 'i', 'c', 'org' from generate_series(1, %s) as g(i)"
                " returning id",
                [org, SCENARIOS],
            ).fetchall()
        ]
        # Spread over 2025: one fact every 31,536,000 / rows seconds.
        conn.execute(
            "insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id,"
            " score, duration_seconds, talk_ms, listen_ms, started_at, ended_at)"
            " select gen_random_uuid(), %(org)s, %(prefix)s || (i %% %(users)s),"
            " (%(scenarios)s::uuid[])[1 + i %% %(n)s], round((i %% 1000) / 10.0, 1),"
            " 60 + i %% 900, 1000 + i %% 5000, 2000 + i %% 3000,"
            " timestamptz '2025-01-01' + make_interval(secs => i * 31536000.0 / %(rows)s),"
            " timestamptz '2025-01-01' + make_interval(secs => i * 31536000.0 / %(rows)s + 300)"
            " from generate_series(0, %(rows)s - 1) as g(i)",
            {
                "org": org,
                "prefix": f"user_bench_{tag}_",
                "users": USERS,
                "scenarios": scenarios,
                "n": SCENARIOS,
                "rows": rows,
            },
        )
        conn.execute("analyze fact_scenario_attempts, dim_users, dim_scenarios")
    return org, admin


def raw_copy(app_url: str, org: uuid.UUID, admin: str) -> tuple[float, int, int]:
    """Seconds, rows and bytes of the export's COPY read on a raw connection,
    under the admin's RLS context, into /dev/null."""
    with (
        psycopg.connect(app_url) as conn,
        open(os.devnull, "wb") as sink,
        conn.cursor() as cur,
    ):
        cur.execute(ENTER, [org, admin])
        cur.execute("select set_config('TimeZone', 'UTC', true)")
        size = 0
        start = time.perf_counter()
        with cur.copy(RAW, [FILTERS["from"], FILTERS["to"]]) as copy:
            for block in copy:
                sink.write(block)
                size += len(block)
        seconds = time.perf_counter() - start
        return seconds, cur.rowcount, size


def worker_export(db_admin_url: str, org: uuid.UUID, admin: str, storage: str = "s3") -> dict:
    """One export through the worker, in a fresh process, into S3 (moto) or
    into nothing (``discard``: what the stream itself costs)."""
    with psycopg.connect(db_admin_url, autocommit=True) as conn:
        export_id = conn.execute(
            "insert into exports (org_id, requested_by, requester_role, kind, filters)"
            " values (%s, %s, 'admin', 'attempts', %s) returning id",
            [org, admin, Jsonb(FILTERS)],
        ).fetchone()[0]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(export_id), str(org), storage],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "succeeded":
        raise RuntimeError(f"the export did not succeed: {report}")
    return report


def main(argv: list[str] | None = None) -> None:
    """Seed both sizes, export each through the worker and by raw COPY, print."""
    parser = argparse.ArgumentParser(prog="python -m bench exports")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv if argv is not None else [])
    moto, moto_url = start_moto()
    try:
        import boto3

        use_function_environment("")
        boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket=BUCKET)
        queue = boto3.client("sqs", endpoint_url=moto_url).create_queue(QueueName="bench")
        with bench_database("practice_bench_exports") as db:
            use_function_environment(db.app_url)
            os.environ |= {
                "PRACTICE_S3_ENDPOINT_URL": moto_url,
                "PRACTICE_SQS_ENDPOINT_URL": moto_url,
                "PRACTICE_UPLOADS_BUCKET": BUCKET,
                "PRACTICE_EXPORTS_QUEUE_URL": queue["QueueUrl"],
            }
            rows_out: list[tuple[str, ...]] = []
            memory: list[tuple[str, ...]] = []
            peaks: list[float] = []
            for size in args.sizes:
                print(f"seeding {size:,} facts …", file=sys.stderr, flush=True)
                org, admin = seed_org(db.admin_url, size)
                raw_copy(db.app_url, org, admin)  # warm the cache: both read it warm
                raw_seconds, raw_rows, raw_bytes = raw_copy(db.app_url, org, admin)
                report = worker_export(db.admin_url, org, admin)
                stream = worker_export(db.admin_url, org, admin, "discard")
                assert report["rows"] == raw_rows == size, (report, raw_rows)
                assert report["bytes"] == raw_bytes, (report, raw_bytes)
                mb = raw_bytes / 1e6
                worker_rate = report["rows"] / report["seconds"]
                raw_rate = raw_rows / raw_seconds
                rows_out += [
                    (
                        f"{size:,} rows/s",
                        f"{worker_rate:,.0f}",
                        f"{raw_rate:,.0f} (raw COPY)",
                        f"{worker_rate / raw_rate:.0%}",
                    ),
                    (
                        f"{size:,} MB/s ({mb:,.1f} MB, {report['parts']} parts)",
                        f"{mb / report['seconds']:,.1f}",
                        f"{mb / raw_seconds:,.1f} (raw COPY)",
                        f"{raw_seconds / report['seconds']:.0%}",
                    ),
                    (
                        f"{size:,} rows/s, parts discarded (no S3)",
                        f"{stream['rows'] / stream['seconds']:,.0f}",
                        f"{raw_rate:,.0f} (raw COPY)",
                        f"{raw_seconds / stream['seconds']:.0%}",
                    ),
                ]
                peak, before = report["peak_kb"] / 1024, report["before_kb"] / 1024
                peaks.append(peak)
                memory.append(
                    (
                        f"{size:,} worker peak RSS during the export",
                        f"{peak:,.1f} MiB",
                        f"{before:,.1f} MiB before it (function imported)",
                        f"+{peak - before:,.1f} MiB",
                    )
                )
                memory.append(
                    (
                        f"{size:,} process lifetime peak (VmHWM)",
                        f"{report['lifetime_peak_kb'] / 1024:,.1f} MiB",
                        "",
                        "",
                    )
                )
            print_table("exports: worker into S3 (moto) vs raw COPY to /dev/null", rows_out)
            print_table("exports: worker memory (a fresh process per export)", memory)
            if len(peaks) > 1:
                print(f"  peak of the largest / the smallest export: {peaks[-1] / peaks[0]:.1%}")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main(sys.argv[1:])
