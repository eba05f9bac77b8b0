"""The book's own forms, where the exercise asks for more or for another API (BOOK_FACTS, "The book's
calling conventions"): each must score full marks. Where the exercise's stricter behaviour is an
extension check, ``extension`` names what that check must report (a diagnosis or a message id).

The printed listings that need no edit of solutions/ (the same code) are covered by the solutions
themselves; the author's package, graded whole, is tests/grader/test_book_package.py.
"""

from pathlib import Path

from tests.grader.variants import Variant

_CH06 = (Path(__file__).resolve().parents[3] / "solutions" / "ch06.py").read_text("utf-8")
# create_balanced_dataset and random_split of the solutions, replaced as one block
_CH06_SPLIT = _CH06[_CH06.index("def create_balanced_dataset("):_CH06.index("class SpamDataset(")]

_BOOK_SPLIT = '''def create_balanced_dataset(df):
    import pandas as pd

    num_spam = df[df["Label"] == "spam"].shape[0]
    ham_subset = df[df["Label"] == "ham"].sample(num_spam, random_state=123)
    balanced_df = pd.concat([ham_subset, df[df["Label"] == "spam"]])
    return balanced_df


def random_split(df, train_frac, validation_frac):
    df = df.sample(frac=1, random_state=123).reset_index(drop=True)
    train_end = int(len(df) * train_frac)
    validation_end = train_end + int(len(df) * validation_frac)
    train_df = df[:train_end]
    validation_df = df[train_end:validation_end]
    test_df = df[validation_end:]
    return train_df, validation_df, test_df


'''

_AD = (Path(__file__).resolve().parents[3] / "solutions" / "appendix_d.py").read_text("utf-8")
# train_model's schedule, from the total number of steps to the call of the lr_at_step helper
_SCHEDULE = _AD[_AD.index("    total_training_steps = len(train_loader)"):_AD.index("            for param_group in")]
_BOOK_SCHEDULE = '''    total_training_steps = len(train_loader) * n_epochs
    lr_increment = (peak_lr - initial_lr) / warmup_steps

    for epoch in range(n_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            global_step += 1

            if global_step < warmup_steps:
                lr = initial_lr + global_step * lr_increment
            else:
                progress = ((global_step - warmup_steps) /
                            (total_training_steps - warmup_steps))
                lr = min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
'''

_CLASSIFY = '''    length = supported if max_length is None else min(max_length, supported)
    input_ids = input_ids[:length]
    if max_length is not None:
        input_ids += [pad_token_id] * (length - len(input_ids))
'''
_BOOK_CLASSIFY = '''    input_ids = input_ids[:min(max_length, supported)]
    input_ids += [pad_token_id] * (max_length - len(input_ids))
'''

VARIANTS = [
    Variant("book-v1-decode-printed-regex", "ch02", r'''return re.sub(r'\s+([,.:;?!"()\'])', r"\1", text)''',
            r'''return re.sub(r'\s+([,.?!"()\'])', r"\1", text)''', "ch02.SimpleTokenizerV1", passes=True),
    Variant("book-highest-gradient-returns-none", "appendix_d",
            '''    if max_grad is None:
        raise ValueError("no parameter has a gradient: call loss.backward() first")
''', "", "appendix_d.find_highest_gradient", passes=True,
            extension="appendix_d.highest_no_value_error"),
    Variant("book-train-model-inline-schedule", "appendix_d", _SCHEDULE, _BOOK_SCHEDULE, "appendix_d.train_model",
            passes=True, extension="check.student_raised"),
    Variant("book-classify-review-needs-max-length", "ch06", _CLASSIFY, _BOOK_CLASSIFY, "ch06.classify_review",
            passes=True, extension="check.student_raised"),
    Variant("book-balanced-dataset-dataframes", "ch06", _CH06_SPLIT, _BOOK_SPLIT, "ch06.create_balanced_dataset",
            passes=True, extension="ch06.raised"),
    Variant("book-lora-float32-parameters", "appendix_e",
            "        self.lora.to(device=linear.weight.device, dtype=linear.weight.dtype)\n", "",
            "appendix_e.LinearWithLoRA", passes=True, extension="check.student_raised"),
]
