"""Asset checks that fail (ERROR) when a model `mood` or `mood_image` calls is retiring.

They run daily in the `check_models` job (schedules.py), not in the recordings' runs, so
the catalog shows a red check on the asset while the model is LEGACY, before its end of
life breaks recordings; a newer ACTIVE model of the same line is named in the description
and metadata (it does not fail the check). `vomage models check` runs the same verdicts
from a terminal.
"""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue, asset_check

from vomage_dagster.domain.model_verdicts import ModelVerdict
from vomage_dagster.domain.models import ConfiguredModel
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.model_catalog import ModelCatalog
from vomage_dagster.resources.painter import ImagePainter


def _result(verdict: ModelVerdict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=verdict.ok, severity=AssetCheckSeverity.ERROR,
        description=verdict.line(),
        metadata={
            "model_id": verdict.model_id, "region": verdict.region, "status": verdict.status,
            "end_of_life": verdict.end_of_life_time or "none announced",
            "problems": MetadataValue.json(list(verdict.problems)),
            "routes_to": MetadataValue.json(list(verdict.foundation_models)),
            "successor": verdict.successor or "none listed",
        })


@asset_check(asset=AssetKey("mood"), blocking=False,
             description="The mood model (or every model its inference profile routes to) is ACTIVE on Bedrock.")
def mood_model_active(analyzer: MoodAnalyzer, model_catalog: ModelCatalog) -> AssetCheckResult:
    return _result(model_catalog.verdict(ConfiguredModel("analysis", analyzer.model_id, analyzer.region_name)))


@asset_check(asset=AssetKey("mood_image"), blocking=False,
             description="The image model is ACTIVE on Bedrock in its region.")
def image_model_active(painter: ImagePainter, model_catalog: ModelCatalog) -> AssetCheckResult:
    return _result(model_catalog.verdict(ConfiguredModel("image", painter.model_id, painter.region_name)))


CHECKS = [mood_model_active, image_model_active]
