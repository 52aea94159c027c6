"""Classification of follower messages (severity, department) and, later, the FAQ knowledge base."""

from knowledge.classifier import Classification, Classifier, KnowledgeDataError

__all__ = ["Classification", "Classifier", "KnowledgeDataError"]
