"""NILM labelling jobs: an upload's bytes and its result in the database, labelled on the workers.

store.py holds the jobs table and its reads and writes; analysis.py turns an upload into what the
page shows (pure, no Dash); jobs.py submits a job to the `labelling` queue and waits for its end;
routes.py is the Flask blueprint (streaming upload, download).
"""
