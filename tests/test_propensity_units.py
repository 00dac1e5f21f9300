"""Stage 04 building blocks on tiny data with hand-computed answers.

Metrics are checked against values worked out by hand; the tree SHAP path
against brute-force enumeration of every coalition; separation and SHAP
with categorical features on the hard cases B21 and B23.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.propensity import data, explain, metrics, models, nbp, storage, treeshap
from relmap_utils.propensity.params import check_parameters


# ----------------------------------------------------------------- metrics


def test_metrics_by_hand():
    target = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10, 0, -1, dtype=float)  # row 0 has the best score

    values = metrics.summary_metrics(target, score)

    # Takers sit at ranks 1, 3, 10: 7 + 6 + 0 of the 21 taker/non-taker pairs are ordered right.
    assert values["auc"] == pytest.approx(13 / 21, abs=1e-12)
    assert values["gini"] == pytest.approx(2 * 13 / 21 - 1, abs=1e-12)
    # After rank 3: 2/3 of takers and 1/7 of non-takers.
    assert values["ks"] == pytest.approx(2 / 3 - 1 / 7, abs=1e-12)
    assert values["capture_10"] == pytest.approx(1 / 3)
    assert values["capture_20"] == pytest.approx(1 / 3)
    assert values["capture_30"] == pytest.approx(2 / 3)


def test_ks_reads_ties_once():
    assert metrics.ks_score([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)


@pytest.mark.parametrize("target", [[0, 0, 0, 0], [1, 1, 1]], ids=["no-takers", "only-takers"])
def test_one_class_gives_nan_with_named_warning(target):
    score = np.linspace(0, 1, len(target))

    with pytest.warns(metrics.OneClassWarning, match="group 'demo/test' has only class"):
        values = metrics.summary_metrics(np.array(target), score, group="demo/test")

    for name in ("auc", "gini", "ks", "capture_10", "capture_20", "capture_30"):
        assert np.isnan(values[name]), name


def test_gains_table_by_decile():
    target = np.array([1] * 2 + [0] * 18)
    score = np.arange(20, 0, -1, dtype=float)

    table = metrics.gains_table(target, score)

    assert table["customers"].tolist() == [2] * 10
    assert table.loc[0, "lift"] == pytest.approx(10.0)
    assert table["gain"].iloc[0] == pytest.approx(1.0)


# ----------------------------------------------------------------- labels and parameters


def test_label_values_refused_by_name():
    raw = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "product": "loan",
                        "label_date": pd.to_datetime(["2024-01-01"] * 4).date,
                        "value": ["1", "2", "2", "no"]})

    labels, skip = data.product_labels(raw, "loan")

    assert labels is None
    message = skip.as_dict()["message_en"]
    assert "loan" in message
    assert "2 rows" in message


def test_yes_no_labels_accepted():
    parsed, refused = data.parse_label_values(pd.Series(["Yes", " no", "1", "0", 1]))
    assert parsed.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert refused == {}


def test_bad_parameter_names_key_path():
    with pytest.raises(ConfigError, match=r"stages\.propensity\.params\.split\.method"):
        check_parameters({"split": {"method": "sideways"}})


def test_absent_feature_refused_by_name():
    frame = pd.DataFrame({"customer_id": ["a"], "x": [1.0]})
    with pytest.raises(StageError, match="nope"):
        data.select_features(frame, check_parameters({"features": ["x", "nope"]}))


def test_post_outcome_column_dropped_and_reported():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "x": [1.0, 2.0], "duration": [3, 4]})
    features, dropped = data.select_features(frame, check_parameters({"post_outcome": ["duration"]}))
    assert features == ["x"]
    assert dropped == ["duration"]


def test_map_dated_inside_label_window_refused():
    import datetime as dt

    dates = [dt.date(2023, 12, 31), dt.date(2024, 6, 30)]
    with pytest.raises(StageError, match="features_as_of=2024-06-30"):
        data.choose_features_date(dates, dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    assert data.choose_features_date(dates, dt.date(2024, 1, 1), None) == dt.date(2023, 12, 31)


def test_time_split_keeps_dates_together():
    dates = pd.Series(pd.to_datetime(["2024-01-01"] * 5 + ["2024-02-01"] * 2 + ["2024-03-01"] * 3).date)
    assert str(data.time_cutoff(dates, 0.3)) == "2024-03-01"


# ----------------------------------------------------------------- logistic baseline (case B21)


def test_b21_complete_separation_named(cases: Path):
    expected = json.loads((cases / "B21" / "expected.json").read_text(encoding="utf-8"))["expected"]
    frame = pd.read_csv(cases / "B21" / "campaign_response.csv", dtype=str)
    target_column = frame.columns[-1]
    target = frame[target_column].astype(int).to_numpy()
    features = frame.drop(columns=[frame.columns[0], target_column]).apply(pd.to_numeric)

    with pytest.warns(models.SeparationWarning, match=expected["separating_features"][0]):
        result = models.fit_logit(features, target)

    found = {item.feature: item.kind for item in result.separation}
    assert found == {name: expected["separation_type"] for name in expected["separating_features"]}
    table = result.coefficients.set_index("feature")
    for name in expected["separating_features"]:
        assert table.loc[name, "status"] == "separation_complete"
        assert np.isnan(table.loc[name, "coefficient"])
    assert np.isnan(table.loc[name, "p_value"])


def test_quasi_separation_detected():
    frame = pd.DataFrame({"x": [0, 0, 1, 1, 1, 2, 3]})
    found = models.find_separation(frame, np.array([0, 0, 0, 1, 1, 1, 1]))
    assert [(item.feature, item.kind) for item in found] == [("x", "quasi")]


# ----------------------------------------------------------------- SHAP (case B23)


def test_b23_categorical_shap_correct_and_checked(cases: Path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    expected = json.loads((cases / "B23" / "expected.json").read_text(encoding="utf-8"))
    frame = pd.read_csv(cases / "B23" / "channel_fee_train.csv", dtype=str)
    channel, age, fee = frame.columns[1], frame.columns[2], frame.columns[3]
    frame[age] = pd.to_numeric(frame[age])
    matrix, _ = data.encode_frame(frame, [channel, age])
    model = HistGradientBoostingRegressor(categorical_features=[True, False]).fit(matrix, frame[fee].astype(float))

    with pytest.warns(explain.AdditivityWarning):
        result = explain.explain(model, matrix, matrix)

    tolerance = expected["tolerance"]
    assert result.method != explain.TREE
    assert result.tree_additivity_error > 1.0  # shap's tree path is wrong here, and was caught
    assert result.max_additivity_error < 1e-6
    assert result.base_value == pytest.approx(expected["expected"]["expected_value"], abs=tolerance)
    by_level = pd.Series(result.values[:, 0]).groupby(frame[channel].to_numpy()).mean()
    for level, value in expected["expected"]["shap_主要渠道_by_level"].items():
        assert by_level[level] == pytest.approx(value, abs=tolerance)
    assert np.abs(result.values[:, 1]).max() <= tolerance


def _random_model(seed: int = 1):
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(seed)
    n = 500
    matrix = np.column_stack([rng.integers(0, 7, n).astype(float), rng.normal(size=n), rng.normal(size=n),
                              rng.integers(0, 3, n).astype(float)])
    matrix[rng.random(n) < 0.1, 1] = np.nan
    matrix[rng.random(n) < 0.1, 0] = np.nan
    target = ((matrix[:, 0] % 3 == 1) ^ (np.nan_to_num(matrix[:, 1]) > 0.3) | (matrix[:, 3] == 2)).astype(int)
    model = HistGradientBoostingClassifier(categorical_features=[True, False, False, True], max_iter=20,
                                           random_state=0).fit(matrix, target)
    return model, matrix


def test_tree_path_equals_enumeration_of_every_coalition():
    model, matrix = _random_model()
    rows, background = matrix[100:120], matrix[:30]

    fast = treeshap.tree_shap_values(model, rows, background)
    brute, _ = explain._exact_values(model, rows, background, np.arange(matrix.shape[1]))

    np.testing.assert_allclose(fast, brute, atol=1e-9)


def test_tree_path_same_for_any_chunking_and_for_leaves_without_a_table(monkeypatch):
    model, matrix = _random_model()
    rows, background = matrix[100:180], matrix[:30]
    whole = treeshap.tree_shap_values(model, rows, background, chunk=len(rows))

    chunked = treeshap.tree_shap_values(model, rows, background, chunk=7, workers=2)
    monkeypatch.setattr(treeshap, "DENSE_BITS", 0)  # every leaf computed row by row
    direct = treeshap.tree_shap_values(model, rows, background, chunk=len(rows))

    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_allclose(direct, whole, atol=1e-12)


def test_permutation_fallback_is_additive():
    model, matrix = _random_model()
    rows, background = matrix[:15], matrix[20:40]
    values, base = explain._permutation_values(model, rows, background, np.arange(4), np.random.default_rng(0))
    output = explain.raw_output(model, rows)
    assert explain.additivity_error(values, base, output) < 1e-9


def test_reason_sentences_are_bilingual():
    frame = pd.DataFrame({"interest_education_count": [12.0], "city": ["上海"]})
    values = np.array([[0.8, 0.3]])
    dictionary = {"interest_education_count": {"zh_CN": "近3个月浏览教育类资讯次数", "en": "education views, 3 months"},
                  "city": {"zh_CN": "城市", "en": "city"}}

    codes = explain.reason_codes(values, frame, ["interest_education_count", "city"], dictionary)

    assert codes.loc[0, "reason_1_zh"] == "浏览子女教育类内容次数为 12"
    assert codes.loc[0, "reason_1_en"] == "children's education pages browsed is 12"
    assert codes.loc[0, "reason_2_zh"] == "城市为“上海”"
    assert codes.loc[0, "reason_3_zh"] == ""


def test_reason_codes_equal_sentence_by_sentence():
    frame = pd.DataFrame({
        "amount": [1.5, np.nan, 12345.0, 1.5, 2.0],
        "flag": pd.array([True, None, False, True, True], dtype="boolean"),
        "city": pd.Series(["上海", None, "北京", "上海", "上海"], dtype="string"),
        "count": pd.array([3, None, 4, 3, 5], dtype="Int64"),
        "plain": [1, 2, 3, 1, 4],
    })
    features = list(frame.columns)
    dictionary = {"amount": {"zh_CN": "金额", "en": "amount", "unit": "yuan"}}
    values = np.random.default_rng(3).normal(size=(len(frame), len(features)))

    codes = explain.reason_codes(values, frame, features, dictionary)

    for row in range(len(frame)):
        ranked = [i for i in np.argsort(-values[row], kind="stable")[:3] if values[row, i] > 0]
        for rank in range(3):
            name = features[ranked[rank]] if rank < len(ranked) else ""
            assert codes.loc[row, f"reason_{rank + 1}_feature"] == name
            for locale, suffix in (("zh_CN", "zh"), ("en", "en")):
                expected = explain._sentence(name, frame.at[row, name], 0.0, dictionary, locale) if name else ""
                assert codes.loc[row, f"reason_{rank + 1}_{suffix}"] == expected


# ----------------------------------------------------------------- model files


def test_model_round_trip_and_hash(tmp_path):
    model, matrix = _random_model()
    digest = storage.save_model(model, tmp_path / "model.skops")

    loaded = storage.load_model(tmp_path / "model.skops", digest)

    np.testing.assert_allclose(loaded.predict_proba(matrix[:5]), model.predict_proba(matrix[:5]))
    with pytest.raises(StageError, match="sha256"):
        storage.load_model(tmp_path / "model.skops", "0" * 64)


def _custom_scale(values):
    return values * 2


def test_untrusted_type_refused_without_running_it(tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=_custom_scale), tmp_path / "evil.skops")

    with pytest.raises(StageError, match="_custom_scale"):
        storage.load_model(tmp_path / "evil.skops")


# ----------------------------------------------------------------- next best product and campaign


def test_suitability_levels():
    tolerance = pd.Series(["C1", "C2", "C5", None])
    assert nbp.suitable(tolerance, "R2").tolist() == [False, True, True, False]
    assert nbp.suitable(tolerance, None).tolist() == [True] * 4


def test_contact_policy_exclusions():
    import datetime as dt

    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "opt_out": ["是", "否", None, "0"],
                              "complaint": [0, 0, 1, 0],
                              "last_call": pd.to_datetime(["2024-06-01", "2024-06-25", None, "2024-01-01"])})
    campaign = check_parameters({"campaign": {"contact_policy": {
        "opted_out": "opt_out", "open_complaint": "complaint", "last_contact": "last_call", "recent_days": 10}}}).campaign

    result = nbp.contact_exclusions(customers, campaign, dt.date(2024, 6, 30))

    assert result["opted_out"].tolist() == [True, False, False, False]
    assert result["open_complaint"].tolist() == [False, False, True, False]
    assert result["recent_contact"].tolist() == [False, True, False, False]


def test_next_best_skips_held_products():
    scores = pd.DataFrame({"customer_id": ["a", "a", "a"], "product": ["x", "y", "z"],
                           "probability": [0.5, 0.2, 0.9], "held": [False, False, True]})

    ranked = nbp.next_best(scores, {"y": 3.0})

    assert ranked["product"].tolist() == ["y", "x"]
    assert ranked["expected_value"].tolist() == pytest.approx([0.6, 0.5])


def test_campaign_csv_has_bom(tmp_path):
    frame = pd.DataFrame({"customer_id": ["p1"], "reason_1_zh": ["浏览子女教育类资讯"]})
    paths = nbp.write_campaign_files(frame, tmp_path, "education", {"customer_id": "客户号（假名）"})
    assert paths["csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert pd.read_excel(paths["xlsx"]).columns.tolist() == ["客户号（假名）", "reason_1_zh"]


def test_numeric_model_explanation_additive():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(400, 3))
    target = (matrix[:, 0] + 0.5 * matrix[:, 1] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(matrix, target)

    with warnings.catch_warnings():
        # shap 0.51's tree path misses additivity on this numeric model too (error about 0.7).
        warnings.simplefilter("ignore", explain.AdditivityWarning)
        result = explain.explain(model, matrix[:300], matrix[300:])

    assert result.method in {explain.TREE, explain.TREE_INTERVENTIONAL}
    assert result.max_additivity_error < 1e-6


def test_absent_post_outcome_column_refused():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "x": [1.0, 2.0]})
    with pytest.raises(StageError, match="duraton"):
        data.select_features(frame, check_parameters({"post_outcome": ["duraton"]}))


def test_every_explainer_method_has_a_label():
    from relmap_utils.i18n import tr
    from relmap_utils.propensity import explain

    for method in (explain.TREE, explain.TREE_INTERVENTIONAL, explain.EXACT, explain.PERMUTATION):
        for locale in ("zh_CN", "en"):
            key = f"propensity.explainer.{method}"
            assert tr(key, locale=locale) != key, (method, locale)


def test_unknown_product_filter_named():
    import ibis

    from relmap_utils.errors import StageError
    from relmap_utils.propensity.data import load_labels
    from relmap_utils.propensity.params import check_parameters

    labels = ibis.memtable({"customer_id": ["a", "b"], "label_type": ["takeup", "takeup"],
                            "label_date": ["2024-01-31", "2024-02-29"], "value": ["1", "0"],
                            "product": ["mortgage", "travel_card"]})
    settings = check_parameters({"products": ["mortage"]})

    with pytest.raises(StageError, match="mortage.*mortgage, travel_card") as raised:
        load_labels(None, {"labels": labels}, settings)
    assert raised.value.key == "propensity.products_not_found"
