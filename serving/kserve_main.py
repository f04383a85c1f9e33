"""`python -m serving.kserve_main --model_name onevision --model_dir /mnt/models`: parse arguments, start
kserve.ModelServer with one `OneVisionModel` (KServe's usual flags such as --http_port also apply)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import kserve

from onevision.serving_core import ServiceLimits
from serving.kserve_guards import install_guards
from serving.kserve_model import OneVisionModel


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    parser.add_argument("--model_dir", required=True, help="Bundle directory, model layout (model-store/*.mar) or s3:// URI.")
    parser.add_argument("--max_image_bytes", type=int, default=2_000_000, help="Largest encoded image accepted (413 above).")
    parser.add_argument("--max_batch", type=int, default=64, help="Most instances per request (413 above).")
    parser.add_argument("--default_top_k", type=int, default=10, help="k when a request gives none.")
    parser.add_argument("--max_top_k", type=int, default=100, help="Largest k accepted (400 above).")
    parser.add_argument("--max_request_bytes", type=int, default=ServiceLimits().max_request_bytes,
                        help="Largest request body accepted (413 above; TorchServe's max_request_size default).")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args, _ = build_parser().parse_known_args(argv)
    model = OneVisionModel(args.model_name, args.model_dir, args.max_image_bytes, args.max_batch,
                           args.default_top_k, args.max_top_k)
    model.load()
    from kserve.model_server import app

    install_guards(app, args.max_request_bytes)
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
