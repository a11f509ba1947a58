from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.core.dag import DagError, build_graph, path_overlaps


def test_order_follows_outputs_not_declaration():
    graph = build_graph(
        {"train": ["data/clean", "train.py"], "prepare": ["raw.csv"], "eval": ["model"]},
        {"train": ["model"], "prepare": ["data/clean"], "eval": ["metrics.json"]},
    )
    assert graph.order == ("prepare", "train", "eval")
    assert graph.downstream_of(["train"]) == {"train", "eval"}
    assert graph.upstream_of(["eval"]) == {"prepare", "train", "eval"}


def test_dep_inside_a_directory_output_is_an_edge():
    graph = build_graph({"a": [], "b": ["out/file.csv"]}, {"a": ["out"], "b": ["x"]})
    assert graph.upstream["b"] == {"a"}


def test_cycle_names_the_stages():
    with pytest.raises(DagError, match="cycle: ") as info:
        build_graph({"a": ["y"], "b": ["x"], "c": []}, {"a": ["x"], "b": ["y"], "c": ["z"]})
    assert info.value.stages == ["a", "b"]


def test_two_stages_writing_one_path_is_refused():
    with pytest.raises(DagError, match="'a' and 'b' both write 'out'"):
        build_graph({"a": [], "b": []}, {"a": ["out"], "b": ["out/inner"]})


def test_self_dependency_is_refused():
    with pytest.raises(DagError, match="depends on its own output"):
        build_graph({"a": ["x"]}, {"a": ["x"]})


def test_path_overlap_is_by_component():
    assert path_overlaps("data", "data/x")
    assert not path_overlaps("data", "database")


@given(st.integers(min_value=1, max_value=12), st.randoms(use_true_random=False))
def test_any_chain_is_ordered_whatever_the_declaration_order(n, rnd):
    names = [f"s{i}" for i in range(n)]
    deps = {name: ([f"f{i - 1}"] if i else []) for i, name in enumerate(names)}
    outs = {name: [f"f{i}"] for i, name in enumerate(names)}
    shuffled = names[:]
    rnd.shuffle(shuffled)
    graph = build_graph({s: deps[s] for s in shuffled}, {s: outs[s] for s in shuffled})
    assert list(graph.order) == names
