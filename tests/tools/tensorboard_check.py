"""Reads the TensorBoard event files of a zt run directory with TensorBoard's own readers and
checks them against the run's metrics.jsonl: every record's scalars at its step, once, and no
others. Each file must open with its file_version and a restart marker (SessionLog START) at
its run's first step, which makes TensorBoard drop older files' records of the steps a
resumed run trained again.

usage: tensorboard_check.py RUN_DIR [--files N]
Prints one line and exits 0 when everything matches; else prints each mismatch, exits 1.
"""
import argparse
import glob
import json
import math
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

# metrics.jsonl key -> tag; objects under a key are flattened below its tag with '/'.
TAGS = {
    "loss": "train/loss",
    "val_loss": "val/loss",
    "lr": "optim/lr",
    "grad_norm": "optim/grad_norm",
    "clip_scale": "optim/clip_scale",
    "loss_scale": "optim/loss_scale",
    "skipped_steps": "optim/skipped_steps",
    "tokens_per_s": "perf/tokens_per_s",
    "gflops": "perf/gflops",
    "tokens": "perf/tokens",
    "elapsed_s": "perf/elapsed_s",
    "comm_busy_s": "comm/busy_s",
    "comm_exposed_s": "comm/exposed_s",
    "comm_bytes_sent": "comm/bytes_sent",
    "comm_calls": "comm/calls",
    "memory": "memory",
    "model_state_bytes": "memory/model_state",
}
# Keys deliberately not logged as scalars.
SKIPPED = {"step", "world_size", "zero_stage", "ranks", "profile"}


def flatten(tag, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(tag + "/" + k, v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[tag] = float(value)


def expected_scalars(metrics_path, problems):
    """{tag: [(step, value)]} from metrics.jsonl."""
    expected = {}
    with open(metrics_path) as f:
        for line in f:
            record = json.loads(line)
            unknown = set(record) - set(TAGS) - SKIPPED
            if unknown:
                problems.append(f"metrics.jsonl has keys this check does not know: {sorted(unknown)}")
            scalars = {}
            for key, tag in TAGS.items():
                if key in record:
                    flatten(tag, record[key], scalars)
            for tag, value in scalars.items():
                expected.setdefault(tag, []).append((record["step"], value))
    return expected


def read_records(path, problems):
    """Every record of one events file through TensorBoard's record reader (CRC-checked)."""
    status = None
    reader = pywrap_tensorflow.PyRecordReader_New(path.encode(), 0, b"", status)
    records = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return records
        except errors.DataLossError as e:
            problems.append(f"{path}: {e}")
            return records
        records.append(reader.record())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--files", type=int, default=None)
    args = parser.parse_args()
    problems = []

    files = sorted(glob.glob(os.path.join(args.run_dir, "events.out.tfevents.*")))
    if args.files is not None and len(files) != args.files:
        problems.append(f"expected {args.files} events files, found {len(files)}: {files}")
    for path in files:
        events = [event_pb2.Event.FromString(r) for r in read_records(path, problems)]
        if len(events) < 2 or events[0].file_version != "brain.Event:2":
            problems.append(f"{path}: the first event is not file_version brain.Event:2")
            continue
        start = events[1]
        if start.session_log.status != event_pb2.SessionLog.START or start.step < 1:
            problems.append(f"{path}: the second event is not a SessionLog START: {start}")
        for e in events[2:]:
            if not e.HasField("summary") or e.step < start.step or e.wall_time < events[0].wall_time:
                problems.append(f"{path}: not a scalars event of this run: {e}")
            for v in e.summary.value:
                if v.WhichOneof("value") != "simple_value":
                    problems.append(f"{path}: {v.tag} at step {e.step} is not a simple_value")

    expected = expected_scalars(os.path.join(args.run_dir, "metrics.jsonl"), problems)
    acc = EventAccumulator(args.run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    if tags != set(expected):
        problems.append(f"tags missing: {sorted(set(expected) - tags)}; unexpected: {sorted(tags - set(expected))}")
    points = 0
    for tag in sorted(tags & set(expected)):
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = expected[tag]
        if [s for s, _ in got] != [s for s, _ in want]:
            problems.append(f"{tag}: steps {[s for s, _ in got]}, metrics.jsonl has {[s for s, _ in want]}")
            continue
        for (step, value), (_, reference) in zip(got, want):
            points += 1
            # Stored as float32: within its rounding of the double in metrics.jsonl.
            if not math.isclose(value, reference, rel_tol=1e-6, abs_tol=1e-30):
                problems.append(f"{tag} at step {step}: {value} vs {reference} in metrics.jsonl")

    if problems:
        print("\n".join(problems))
        return 1
    steps = sorted({s for per_tag in expected.values() for s, _ in per_tag})
    print(f"ok: {len(files)} events file(s), {len(tags)} tags, {points} scalars at steps {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
