"""Scoring: SQuAD F1/EM (original capability), math answers, multiple choice."""
