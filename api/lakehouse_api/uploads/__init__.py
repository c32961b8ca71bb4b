"""Receiving an upload: streaming multipart parsing, format sniffing, S3 multipart writes, the run."""
