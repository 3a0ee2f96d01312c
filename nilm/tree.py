"""A fitted decision tree as plain arrays, walked with numpy (no scikit-learn at labelling time).

    TreeArrays.from_sklearn(tree_classifier) -> TreeArrays
    TreeArrays.predict_proba(X) -> (n, n_classes) float32
    TreeArrays.to_arrays(prefix) / TreeArrays.from_arrays(arrays, prefix)  (for np.savez)
"""
from dataclasses import dataclass

import numpy as np

LEAF = -1


@dataclass(frozen=True)
class TreeArrays:
    children_left: np.ndarray  # int32, LEAF at leaves
    children_right: np.ndarray  # int32
    feature: np.ndarray  # int32 feature index tested at each node
    threshold: np.ndarray  # float64: go left when X[:, feature] <= threshold
    value: np.ndarray  # float32 (n_nodes, n_classes): class shares at each node
    classes: np.ndarray  # int64 class label of each value column

    @classmethod
    def from_sklearn(cls, classifier):
        t = classifier.tree_
        value = t.value[:, 0, :]
        value = value / value.sum(axis=1, keepdims=True)
        return cls(t.children_left.astype(np.int32), t.children_right.astype(np.int32),
                   t.feature.astype(np.int32), t.threshold.astype(np.float64),
                   value.astype(np.float32), np.asarray(classifier.classes_, dtype=np.int64))

    def apply(self, X):
        """Leaf node reached by each row; all rows descend one level per step."""
        # As sklearn does: float32 features against float64 thresholds (rounding them would move splits).
        X = np.asarray(X, dtype=np.float32)
        node = np.zeros(X.shape[0], dtype=np.int32)
        active = np.arange(X.shape[0]) if self.children_left[0] != LEAF else np.zeros(0, dtype=int)
        while active.size:
            n = node[active]
            go_left = X[active, self.feature[n]] <= self.threshold[n]
            node[active] = np.where(go_left, self.children_left[n], self.children_right[n])
            active = active[self.children_left[node[active]] != LEAF]
        return node

    def predict_proba(self, X):
        return self.value[self.apply(X)]

    def to_arrays(self, prefix="tree_"):
        return {prefix + name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays, prefix="tree_"):
        return cls(**{name: np.asarray(arrays[prefix + name]) for name in cls.__dataclass_fields__})
