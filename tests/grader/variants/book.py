"""The book's own forms, where the exercise asks for more or for another API (BOOK_FACTS, "The book's
calling conventions"): each must score full marks. Where the exercise's stricter behaviour is an
extension check, ``extension`` names what that check must report (a diagnosis or a message id).

The printed listings that need no edit of solutions/ (the same code) are covered by the solutions
themselves; the author's package, graded whole, is tests/grader/test_book_package.py.
"""

import ast
from pathlib import Path

from tests.grader.variants import Variant

_SOLUTIONS = Path(__file__).resolve().parents[3] / "solutions"
_CH06 = (_SOLUTIONS / "ch06.py").read_text("utf-8")


def _block(module: str, name: str) -> str:
    """The source of top-level ``name`` in solutions/<module>.py, up to the next top-level statement
    (a comment that heads the next one stays with it): the solution a book listing replaces whole."""
    source = (_SOLUTIONS / f"{module}.py").read_text("utf-8")
    lines = source.splitlines(keepends=True)
    body = ast.parse(source).body
    for i, node in enumerate(body):
        if getattr(node, "name", None) == name:
            end = body[i + 1].lineno - 1 if i + 1 < len(body) else len(lines)
            while end > node.lineno and lines[end - 1].strip().startswith("#"):
                end -= 1
            return "".join(lines[node.lineno - 1:end])
    raise KeyError(f"{module}.{name}")


# The printed listings of items the author's package does not include (chapter 2's tokenizers,
# section 4.4's shortcut demo, section 5.3.1's temperature, appendix A's accuracy).
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

_V1 = '''class SimpleTokenizerV1:
    def __init__(self, vocab):
        self.str_to_int = vocab
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text):
        preprocessed = re.split(r'([,.:;?_!"()\\']|--|\\s)', text)
        preprocessed = [item.strip() for item in preprocessed if item.strip()]
        ids = [self.str_to_int[s] for s in preprocessed]
        return ids

    def decode(self, ids):
        text = " ".join([self.int_to_str[i] for i in ids])
        text = re.sub(r'\\s+([,.?!"()\\'])', r'\\1', text)
        return text


'''

_V2 = (_V1.replace("class SimpleTokenizerV1", "class SimpleTokenizerV2")
       .replace("        ids = [", "        preprocessed = [item if item in self.str_to_int else \"<|unk|>\" "
                "for item in preprocessed]\n        ids = [")
       .replace(r"""([,.?!"()\'])""", r"""([,.:;?!"()\'])"""))

# Listing 4.5: the solution's forward is the book's; its layers are built in a loop, the book's one by one.
_SOLUTION_LAYERS = '''        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(n_in, n_out), GELU())
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
        ])
'''
_BOOK_LAYERS = '''        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(layer_sizes[0], layer_sizes[1]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[1], layer_sizes[2]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[2], layer_sizes[3]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[3], layer_sizes[4]), GELU()),
            nn.Sequential(nn.Linear(layer_sizes[4], layer_sizes[5]), GELU())
        ])
'''

_TEMPERATURE = '''def softmax_with_temperature(logits, temperature):
    scaled_logits = logits / temperature
    return torch.softmax(scaled_logits, dim=0)


'''

_ACCURACY = '''def compute_accuracy(model, dataloader):
    model = model.eval()
    correct = 0.0
    total_examples = 0

    for idx, (features, labels) in enumerate(dataloader):
        with torch.no_grad():
            logits = model(features)

        predictions = torch.argmax(logits, dim=1)
        compare = labels == predictions
        correct += torch.sum(compare)
        total_examples += len(compare)

    return (correct / total_examples).item()


'''

VARIANTS = [
    Variant("book-listing-2-3-tokenizer-v1", "ch02", _block("ch02", "SimpleTokenizerV1"), _V1,
            "ch02.SimpleTokenizerV1", passes=True),
    Variant("book-listing-2-4-tokenizer-v2", "ch02", _block("ch02", "SimpleTokenizerV2"), _V2,
            "ch02.SimpleTokenizerV2", passes=True),
    Variant("book-listing-4-5-shortcuts", "ch04", _SOLUTION_LAYERS, _BOOK_LAYERS,
            "ch04.ExampleDeepNeuralNetwork", passes=True),
    Variant("book-softmax-with-temperature", "ch05", _block("ch05", "softmax_with_temperature"), _TEMPERATURE,
            "ch05.softmax_with_temperature", passes=True, extension="ch05_softmax_wrong_dim"),
    Variant("book-compute-accuracy-float32", "appendix_a", _block("appendix_a", "compute_accuracy"), _ACCURACY,
            "appendix_a.compute_accuracy", passes=True),
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
    # the book's ch05.py imports its plotting and progress-bar libraries at the top; matplotlib lists
    # the system's fonts with a process (fc-list) the first time, which is not the student's doing
    Variant("book-ch05-imports-plotting-libraries", "ch05", "import torch\nimport torch.nn as nn\n",
            "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import MaxNLocator\nimport torch\n"
            "import torch.nn as nn\nfrom tqdm import tqdm\n", "ch05.text_to_token_ids", passes=True),
    Variant("book-lora-float32-parameters", "appendix_e",
            "        self.lora.to(device=linear.weight.device, dtype=linear.weight.dtype)\n", "",
            "appendix_e.LinearWithLoRA", passes=True, extension="check.student_raised"),
]
