"""`abair promote` / `abair rollback`: move ``champion`` only through the quality gate.

``promote`` scores ``challenger`` and ``champion`` on the same suite in one flow run (same images,
crops and seeds: one suite hash), applies the gate (``configs/promotion/gate.yaml``) and moves
``champion`` only if it passes. Either way the challenger version gets tags ``promotion.*``: the
decision, both versions' headline scores, failing tasks, who (``getpass.getuser()``) and when.

Adapters: promoting a single adapter means a new bundle with it. That goes through
``abair add-degradation NAME --replace`` (train the replacement adapter on the champion's backbone,
retrain the estimator over all adapters, register the new bundle as ``challenger``), then this
``promote``; no adapter is ever swapped into a champion bundle in place.
"""

from __future__ import annotations

from prefect import flow

from flows.evaluate import score_model
from flows.runtime import pipeline_from
from tasks.evaluation import decide_promotion, record_promotion
from tasks.registry import configure_mlflow, get_alias_version, rollback_champion

__all__ = ["promote", "rollback"]


@flow(name="promote")
def promote(model_name: str = "abair", suite: str = "configs/benchmark/demo.yaml", pipeline: str | None = None,
            gate: str = "configs/promotion/gate.yaml") -> dict:
    """Evaluate challenger and champion, move champion if the gate passes; returns the decision."""
    config = pipeline_from(pipeline)
    configure_mlflow(config)
    challenger = get_alias_version(model_name, "challenger")
    champion = get_alias_version(model_name, "champion")
    if challenger is None:
        raise LookupError(f"{model_name}: no 'challenger' version to promote")
    result = {"model": model_name, "challenger": challenger, "champion_before": champion}
    if champion == challenger:
        return {**result, "promoted": False, "champion": champion, "failures": [], "failing_tasks": [],
                "reason": "the challenger already is the champion"}
    new, new_scores = score_model(f"models:/{model_name}/{challenger}", suite, config, role="challenger: ")
    if champion is None:
        decision = {"passed": True, "failures": [], "failing_tasks": []}
        old = {"headline": {}}
    else:
        old, old_scores = score_model(f"models:/{model_name}/{champion}", suite, config, role="champion: ")
        decision = decide_promotion(new_scores, old_scores, gate)
    now = record_promotion(model_name, challenger, champion, decision, new["headline"], old["headline"],
                           new["suite_hash"])
    return {**result, "promoted": bool(decision["passed"]), "champion": now, "failures": decision["failures"],
            "failing_tasks": decision["failing_tasks"], "suite_hash": new["suite_hash"],
            "challenger_scores": new["headline"], "champion_scores": old["headline"],
            "reports": {"challenger": new["report_dir"], "champion": old.get("report_dir")}}


@flow(name="rollback")
def rollback(model_name: str = "abair", pipeline: str | None = None) -> dict:
    """Move ``champion`` back to the version it replaced; returns both versions."""
    configure_mlflow(pipeline_from(pipeline))
    current = get_alias_version(model_name, "champion")
    previous = rollback_champion(model_name)
    return {"model": model_name, "champion": previous, "rolled_back_from": current}
