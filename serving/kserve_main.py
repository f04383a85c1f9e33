"""`python -m serving.kserve_main --model_name onevision --model_dir /mnt/models`: parse arguments, start
kserve.ModelServer with one `OneVisionModel` (KServe's usual flags such as --http_port also apply)."""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

import kserve

from onevision.service.limits import ServiceLimits
from serving.kserve_guards import install_guards
from serving.kserve_model import OneVisionModel


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    parser.add_argument("--model_dir", required=True, help="Bundle directory, model layout (model-store/*.mar) or s3:// URI.")
    defaults = ServiceLimits()
    for f in dataclasses.fields(ServiceLimits):  # one flag per limit, defaults from the one definition
        parser.add_argument(f"--{f.name}", type=int, default=getattr(defaults, f.name),
                            help=f"ServiceLimits.{f.name} (default {getattr(defaults, f.name)}; see docs/serving.md).")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args, _ = build_parser().parse_known_args(argv)
    limits = ServiceLimits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServiceLimits)})
    model = OneVisionModel(args.model_name, args.model_dir, limits)
    model.load()
    from kserve.model_server import app

    install_guards(app, limits.max_request_bytes)
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
