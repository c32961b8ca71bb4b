"""The Datasource API: uploads become IngestionRuns; runs, datasets and bronze tables can be read back.

Run with `uvicorn --factory lakehouse_api.main:create_app`.
"""
