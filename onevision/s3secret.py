"""The Kubernetes Secret that holds the S3 credentials of every pod that reads or writes object storage
(pipeline tasks, TrainJob nodes): KServe's S3 Secret convention (manifests/secrets/), its keys mapped to the
variables boto3 reads."""
from __future__ import annotations

DEFAULT_SECRET = "onevision-s3"
SECRET_KEY_TO_ENV = {"awsAccessKeyID": "AWS_ACCESS_KEY_ID", "awsSecretAccessKey": "AWS_SECRET_ACCESS_KEY"}
ENDPOINT_ENV = "AWS_ENDPOINT_URL"  # an S3-compatible endpoint (MinIO); unset for AWS
