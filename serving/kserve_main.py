"""`python -m serving.kserve_main --model_name onevision --model_dir /mnt/models`: parse arguments, start
kserve.ModelServer with one `OneVisionModel` (KServe's usual flags such as --http_port also apply)."""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

import kserve

from onevision.featurestore.live import DEFAULT_MAX_AGE_S, FeastFeatures
from onevision.featurestore.repo import FeatureRepoConfig
from onevision.service.limits import ServiceLimits
from serving.kserve_guards import install_guards
from serving.kserve_model import FeatureCountsCollector, OneVisionModel


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    parser.add_argument("--model_dir", required=True, help="Bundle directory, model layout (model-store/*.mar) or s3:// URI.")
    defaults = ServiceLimits()
    for f in dataclasses.fields(ServiceLimits):  # one flag per limit, defaults from the one definition
        parser.add_argument(f"--{f.name}", type=int, default=getattr(defaults, f.name),
                            help=f"ServiceLimits.{f.name} (default {getattr(defaults, f.name)}; see docs/serving.md).")
    parser.add_argument("--feature_repo", default="", help="Feast feature repo to read user features from "
                        "(`onevision features materialize`); empty: the bundle's frozen snapshot.")
    parser.add_argument("--feature_timeout_ms", type=int, default=None,
                        help=f"Deadline of one online feature read in ms (default {FeatureRepoConfig.timeout_ms}).")
    parser.add_argument("--feature_max_age_s", type=float, default=DEFAULT_MAX_AGE_S,
                        help=f"How long a user's fetched features are reused (default {DEFAULT_MAX_AGE_S}).")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args, _ = build_parser().parse_known_args(argv)
    limits = ServiceLimits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServiceLimits)})
    features = (FeastFeatures(args.feature_repo, args.feature_timeout_ms, args.feature_max_age_s)
                if args.feature_repo else None)
    model = OneVisionModel(args.model_name, args.model_dir, limits, features)
    model.load()
    if features is not None:
        from prometheus_client import REGISTRY

        REGISTRY.register(FeatureCountsCollector(model))
    from kserve.model_server import app

    install_guards(app, limits.max_request_bytes)
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
