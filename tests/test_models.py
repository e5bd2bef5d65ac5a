"""Every registered model, on both data kinds: shapes, gradients, no NaN; and the registry's errors."""

import pytest
import torch
from conftest import image_meta, series_meta

import nncompare
from nncompare.data import DatasetMeta
from nncompare.models import count_parameters, create_model, list_models, model_names

METAS = {"series": series_meta(), "image": image_meta(channels=2)}


def test_registry_has_the_six_families():
    assert model_names() == ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]
    families = {m.name: m.family for m in list_models()}
    assert families == {
        "mlp": "feed-forward",
        "cnn": "convolutional",
        "tcn": "convolutional",
        "rnn": "recurrent",
        "lstm": "recurrent",
        "gru": "recurrent",
    }


@pytest.mark.parametrize("kind", sorted(METAS))
@pytest.mark.parametrize("name", model_names())
def test_forward_backward_shape_no_nan(name, kind):
    meta = METAS[kind]
    torch.manual_seed(0)
    model = create_model(name, meta)
    x = torch.randn(5, *meta.input_shape)
    out = model(x)
    assert out.shape == (5, meta.n_classes)
    assert torch.isfinite(out).all()
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())
    assert count_parameters(model) > 0


@pytest.mark.parametrize("name", model_names())
def test_examples_are_independent_in_eval_mode(name):
    """A batch's outputs equal the outputs of its examples one at a time (no mixing across the batch)."""
    meta = METAS["series"]
    torch.manual_seed(1)
    model = create_model(name, meta).eval()
    x = torch.randn(4, *meta.input_shape)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_unknown_model_lists_valid_names():
    with pytest.raises(nncompare.UserError, match="did you mean 'lstm'.*valid choices: mlp, cnn, tcn, rnn, lstm, gru"):
        create_model("lstn", METAS["series"])


def test_unknown_hyperparameter_lists_valid_ones():
    with pytest.raises(nncompare.UserError, match="no hyperparameter hidden.*valid: activation, depth, dropout, norm, residual, width, window"):
        create_model("mlp", METAS["series"], hidden=3)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("mlp", {"width": 0}, "width must be a positive whole number"),
        ("mlp", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ("cnn", {"activation": "swish"}, "unknown activation 'swish'"),
        ("cnn", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ("tcn", {"kernel_size": 1}, "kernel_size must be at least 2"),
        ("gru", {"hidden_size": -4}, "hidden_size must be a positive whole number"),
        ("gru", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ("lstm", {"impl": "cuda"}, "valid choices: auto, fused, equations"),
        ("lstm", {"impl": "fused", "norm": "layer"}, "fused LSTM cannot compute norm='layer'; use impl='auto' or impl='equations'"),
        ("gru", {"impl": "fused", "recurrent_dropout": 0.2}, "fused GRU cannot compute recurrent_dropout=0.2"),
        ("tcn", {"readout": "max"}, "readout must be one of last, mean"),
        ("lstm", {"readout": "first"}, "readout must be one of last, mean"),
    ],
)
def test_bad_hyperparameters_are_user_errors(name, kwargs, message):
    with pytest.raises(nncompare.UserError, match=message):
        create_model(name, METAS["series"], **kwargs)


@pytest.mark.parametrize("kind", sorted(METAS))
def test_cnn_dropout_drops_the_pooled_features_and_adds_no_weights(kind):
    """dropout=0 (the default) is the CNN stored runs were trained with: the same state_dict keys, so
    they load; with dropout > 0 the head's input in training is the eval-mode input, each feature
    either dropped or scaled by 1 / (1 - p), and eval mode gives the same output as without it."""
    meta = METAS[kind]
    torch.manual_seed(0)
    plain = create_model("cnn", meta)
    dropped = create_model("cnn", meta, dropout=0.5)
    assert list(plain.state_dict()) == list(dropped.state_dict())
    assert list(plain.state_dict())[-2:] == ["head.weight", "head.bias"] and not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())
    dropped.load_state_dict(plain.state_dict())
    x = torch.randn(6, *meta.input_shape)
    seen = []
    dropped.head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), plain.eval()(x))
        features = seen[-1]
        if kind == "image":  # no batch norm on images: the features do not depend on the mode
            torch.manual_seed(1)
            dropped.train()(x)
            kept = seen[-1] != 0
            assert 0 < kept.float().mean() < 1
            torch.testing.assert_close(seen[-1][kept], 2 * features[kept])


def test_tcn_receptive_field_covers_the_sequence():
    for length in (2, 12, 40, 200):
        model = create_model("tcn", series_meta(length=length))
        rf = model.receptive_field()
        assert rf >= length
        # one level fewer would not cover it (the fewest levels are chosen)
        assert model.levels == 1 or 1 + 2 * 2 * (2 ** (model.levels - 1) - 1) < length


def test_tcn_is_causal():
    """Changing step t never moves the features of earlier steps."""
    meta = series_meta(length=16)
    torch.manual_seed(0)
    model = create_model("tcn", meta).eval()
    x = torch.randn(2, *meta.input_shape)
    x2 = x.clone()
    x2[:, 9] += 5.0
    with torch.no_grad():
        a, b = model.features(x), model.features(x2)
    torch.testing.assert_close(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_recurrent_models_read_images_row_by_row():
    """An image of H rows is H steps: the RNN's hidden states have one entry per row."""
    meta = image_meta(channels=2, height=6, width=5)
    model = create_model("gru", meta, hidden_size=7)
    x = torch.randn(3, *meta.input_shape)
    assert model.hidden_states(x).shape == (3, 6, 7)
    # the first step sees exactly row 0 of every channel
    from nncompare.models.layers import sequence_view

    seq = sequence_view(x, "image")
    torch.testing.assert_close(seq[:, 0], torch.cat([x[:, 0, 0], x[:, 1, 0]], dim=1))


def test_cnn_uses_2d_convolutions_on_images_and_1d_on_series():
    img = create_model("cnn", image_meta())
    ser = create_model("cnn", series_meta())
    assert any(isinstance(m, torch.nn.Conv2d) for m in img.modules())
    assert not any(isinstance(m, torch.nn.Conv2d) for m in ser.modules())
    assert any(isinstance(m, torch.nn.Conv1d) for m in ser.modules())


def task_meta(task, length=10, channels=2):
    from nncompare.data import DatasetMeta

    if task == "regress":
        return DatasetMeta(name="toy-regress", kind="series", task="regress", input_shape=(length, channels), n_classes=0, n_outputs=1)
    return DatasetMeta(name="toy-per-step", kind="series", task="per_step", input_shape=(length, channels), n_classes=5)


@pytest.mark.parametrize("name", model_names())
def test_regression_outputs_one_value_per_input(name):
    meta = task_meta("regress")
    torch.manual_seed(0)
    model = create_model(name, meta)
    out = model(torch.randn(3, *meta.input_shape))
    assert out.shape == (3, 1) and torch.isfinite(out).all()
    torch.nn.functional.mse_loss(out[:, 0], torch.randn(3)).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", model_names())
def test_per_step_outputs_are_causal(name):
    """One label per position: changing the input at step 6 moves no output before step 6."""
    meta = task_meta("per_step", length=10)
    torch.manual_seed(0)
    model = create_model(name, meta).eval()
    x = torch.randn(2, *meta.input_shape)
    x2 = x.clone()
    x2[:, 6] += 3.0
    with torch.no_grad():
        a, b = model(x), model(x2)
    assert a.shape == (2, 10, 5)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])  # ... and the change is seen from step 6 on


def test_mlp_per_step_window_limits_how_far_back_it_reads():
    meta = task_meta("per_step", length=10)
    torch.manual_seed(0)
    model = create_model("mlp", meta, window=3, dropout=0.0).eval()
    x = torch.randn(1, *meta.input_shape)
    x2 = x.clone()
    x2[:, 2] += 3.0
    with torch.no_grad():
        a, b = model(x), model(x2)
    assert not torch.allclose(a[:, 2:5], b[:, 2:5])  # steps 2, 3, 4 have step 2 in their window
    torch.testing.assert_close(a[:, 5:], b[:, 5:])  # from step 5 on it has left the window


def text_meta(length=12, vocabulary=7):
    from nncompare.data import DatasetMeta

    return DatasetMeta(name="toy-text", kind="text", task="per_step", input_shape=(length,), n_classes=vocabulary)


def test_mlp_on_text_equals_its_first_layer_on_one_hot_windows():
    """The lookup the MLP uses for character ids gives the Linear-on-one-hot result, values and gradients."""
    import torch.nn.functional as F

    meta = text_meta(length=12, vocabulary=7)
    torch.manual_seed(0)
    model = create_model("mlp", meta, window=4, width=16, dropout=0.0)
    ids = torch.randint(0, 7, (3, 12))
    fast = model(ids)
    one_hot = F.pad(F.one_hot(ids, 7).float(), (0, 0, 3, 0))  # (B, 3 + T, V): zeros before the start
    windows = one_hot.unfold(1, 4, 1).reshape(3, 12, 7 * 4)  # (B, T, V * window), the layout Linear reads
    slow = model.head(model.body(windows))
    torch.testing.assert_close(fast, slow)
    fast.square().sum().backward()
    g_fast = model.body[0].weight.grad.clone()
    model.zero_grad()
    model.head(model.body(windows)).square().sum().backward()
    torch.testing.assert_close(g_fast, model.body[0].weight.grad)
    # the first output reads only the first character: later ones are zeros, not symbol 0
    ids2 = ids.clone()
    ids2[:, 1:] = (ids[:, 1:] + 1) % 7
    torch.testing.assert_close(model(ids2)[:, 0], fast[:, 0])


def test_cnn_batch_norm_sits_between_convolution_and_activation():
    plain = create_model("cnn", series_meta(), channels=8, norm="none")
    normed = create_model("cnn", series_meta(), channels=8, norm="batch")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    block = normed.features[0]
    assert [type(m).__name__ for m in block] == ["Conv1d", "MaskedBatchNorm1d", "ReLU"]
    assert count_parameters(normed) == count_parameters(plain) + 3 * 2 * 8  # scale and shift per channel
    # the default: batch norm for series (as FCN), none for images
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in create_model("cnn", series_meta(), channels=8).modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model("cnn", image_meta()).modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model("cnn", image_meta(), norm="batch").modules())
    with pytest.raises(nncompare.UserError, match="norm must be one of none, batch"):
        create_model("cnn", series_meta(), norm="group")


def test_cnn_takes_a_width_and_kernel_per_layer_as_fcn_has():
    from nncompare.analysis import theoretical_receptive_field

    meta = DatasetMeta(name="arrowhead-like", kind="series", task="classify", input_shape=(251, 1), n_classes=3)
    fcn = create_model("cnn", meta, channels=[128, 256, 128], kernel_size=[8, 5, 3], norm="batch")
    convs = [m for m in fcn.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [(1, 128, 8), (128, 256, 5), (256, 128, 3)]
    # FCN's count (Wang et al. 2017): convolutions 1,152 + 164,096 + 98,432, batch norm 2 x (128 + 256 + 128), softmax layer 387
    assert count_parameters(fcn) == 265_091
    assert fcn.receptive_field() == theoretical_receptive_field(fcn) == 1 + 7 + 4 + 2

    def output_shapes(net, x):
        shapes = []
        hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[2:]))) for m in net.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
        out = net(x)
        for h in hooks:
            h.remove()
        return out.shape, shapes

    # every layer keeps the length, an even kernel (padded one more step after than before) too
    assert output_shapes(fcn, torch.randn(2, 251, 1)) == ((2, 3), [(251,)] * 3)
    image = create_model("cnn", image_meta(), channels=[4, 4], kernel_size=[2, 3])
    assert output_shapes(image, torch.randn(2, 1, 6, 5)) == ((2, 4), [(6, 5)] * 2)
    assert count_parameters(create_model("cnn", meta, channels=[16, 16], kernel_size=3)) == count_parameters(create_model("cnn", meta, channels=16, depth=2, kernel_size=3))
    with pytest.raises(nncompare.UserError, match="channels and kernel_size give 2 and 3 layers"):
        create_model("cnn", meta, channels=[8, 8], kernel_size=[3, 3, 3])
    with pytest.raises(nncompare.UserError, match="every layer needs the same channels"):
        create_model("cnn", meta, channels=[8, 16], residual=True)
    with pytest.raises(nncompare.UserError, match="channels must be a positive whole number"):
        create_model("cnn", meta, channels=[8, 0])


@pytest.mark.parametrize("name", model_names())
def test_match_parameters_lands_within_five_percent(name):
    from nncompare.models import get_model_info, match_parameters

    meta = series_meta(length=50, channels=2, n_classes=4)
    # not 5,000: there one more TCN channel adds ~12 % (five levels; 4,638 at 14, 5,284 at 15 with its batch norm),
    # so no width lands within 5 % and the budget is refused as the next test shows for the fixed layers
    for target in (8_000, 20_000):
        args = match_parameters(name, meta, target)
        assert set(args) == {get_model_info(name).width}
        achieved = count_parameters(create_model(name, meta, **args))
        assert abs(achieved - target) <= 0.05 * target, (name, target, achieved)


def test_match_parameters_refuses_a_budget_below_the_fixed_layers():
    from nncompare.models import match_parameters

    meta = series_meta(length=500, channels=3)  # width 1: 1500 + 1, then 1 + 1, then a head of 1 * 3 + 3 = 1,509
    with pytest.raises(nncompare.UserError, match="cannot be sized to 100 parameters.*closest: 1,509 with width=1"):
        match_parameters("mlp", meta, 100)
    with pytest.raises(nncompare.UserError, match="positive whole number"):
        match_parameters("mlp", meta, 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_dropout_is_active_in_training_only_and_the_same_on_both_paths(cell):
    meta = series_meta(length=9, channels=3)
    x = torch.randn(5, 9, 3)
    torch.manual_seed(0)
    dropped = create_model(cell, meta, dropout=0.5, hidden_size=8)
    plain = create_model(cell, meta, dropout=0.0, hidden_size=8)
    plain.load_state_dict(dropped.state_dict())
    dropped.eval(), plain.eval()
    assert torch.equal(dropped(x), plain(x))  # eval: no dropout
    dropped.train()
    assert not torch.allclose(dropped(x), dropped(x))  # training: a new mask each pass
    equations = create_model(cell, meta, dropout=0.5, hidden_size=8, impl="equations")
    equations.load_state_dict(dropped.state_dict())
    equations.train()
    torch.manual_seed(1)
    a = dropped(x)
    torch.manual_seed(1)
    b = equations(x)
    assert torch.allclose(a, b, atol=1e-5)  # same masks, same function: inputs and outputs only, not h_{t-1}


@pytest.mark.parametrize("meta, x", [(series_meta(length=10, channels=2), torch.randn(4, 10, 2)), (image_meta(), torch.randn(4, 1, 6, 5))])
def test_cnn_residual_adds_each_later_blocks_input(meta, x):
    torch.manual_seed(0)
    net = create_model("cnn", meta, channels=6, depth=3, residual=True).eval()
    plain = create_model("cnn", meta, channels=6, depth=3).eval()
    plain.load_state_dict(net.state_dict())  # same parameters: a residual connection adds none
    h = x if meta.kind == "image" else x.transpose(1, 2)
    h = net.features[0](h)
    h = net.features[1](h) + h
    h = net.features[2](h) + h
    expected = net.head(h.flatten(2).mean(-1))
    assert torch.allclose(net(x), expected, atol=1e-6)
    assert not torch.allclose(net(x), plain(x))
    with pytest.raises(nncompare.UserError, match="residual must be true or false"):
        create_model("cnn", meta, residual="yes")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layer_normalised_cells_ignore_the_scale_of_their_weight_matrices(cell):
    # LN(a W x) = LN(W x): a layer-normalised cell computes the same function when W_x or W_h is scaled,
    # the property that makes it insensitive to weight scale (Ba et al. 2016); a plain cell does not
    meta = series_meta(length=7, channels=3)
    x = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0))
    for norm, invariant in (("layer", True), ("none", False)):
        torch.manual_seed(0)
        net = create_model(cell, meta, hidden_size=6, num_layers=2, norm=norm).eval()
        before = net(x)
        with torch.no_grad():
            net.recurrent.fused.weight_ih_l0.mul_(3.0)
            net.recurrent.fused.weight_hh_l1.mul_(2.0)
        assert torch.allclose(net(x), before, atol=2e-3) == invariant, norm  # up to LN's epsilon (1e-5 in the variance)


@pytest.mark.parametrize("channels", [3, 1])  # one input feature: no input norm, each bias still added once
def test_layer_normalised_lstm_matches_its_equations_written_out(channels):
    meta = series_meta(length=2, channels=channels)
    torch.manual_seed(1)
    net = create_model("lstm", meta, hidden_size=4, norm="layer").eval()
    assert net.recurrent.impl == "equations"
    ln = net.recurrent.norms[0]
    with torch.no_grad():  # non-trivial gains and biases, so a misplaced one shows
        for p in ln.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    f = net.recurrent.fused
    x = torch.randn(5, 2, channels)

    def norm(a, gain, bias):  # per gate: (B, 4H) -> (B, 4, H), normalised over H
        a = a.view(len(a), -1, 4)
        a = (a - a.mean(-1, keepdim=True)) / torch.sqrt(a.var(-1, unbiased=False, keepdim=True) + 1e-5)
        return (a * gain + bias).flatten(1)

    h = c = torch.zeros(5, 4)
    for t in range(2):
        a_x = x[:, t] @ f.weight_ih_l0.T if channels == 1 else norm(x[:, t] @ f.weight_ih_l0.T, ln.x.weight, ln.x.bias)
        a = a_x + f.bias_ih_l0 + norm(h @ f.weight_hh_l0.T, ln.h.weight, ln.h.bias) + f.bias_hh_l0
        i, fg, g, o = a.sigmoid()[:, :4], a.sigmoid()[:, 4:8], a[:, 8:12].tanh(), a.sigmoid()[:, 12:]
        c = fg * c + i * g
        cn = (c - c.mean(-1, keepdim=True)) / torch.sqrt(c.var(-1, unbiased=False, keepdim=True) + 1e-5) * ln.c.weight + ln.c.bias
        h = o * cn.tanh()
    assert torch.allclose(net(x), net.head(h), atol=1e-5)
    plain = create_model("lstm", meta, hidden_size=4)
    extra = count_parameters(net) - count_parameters(plain)
    norms = 2 if channels > 1 else 1  # input and recurrent norms per gate (recurrent only for one feature), cell norm
    assert extra == norms * (2 * 4 * 4) + 2 * 4
    with pytest.raises(nncompare.UserError, match="norm must be one of none, layer"):
        create_model("gru", meta, norm="batch")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_dropout_drops_only_the_recurrent_connection(cell):
    meta = series_meta(length=6, channels=2)
    torch.manual_seed(0)
    net = create_model(cell, meta, hidden_size=16, recurrent_dropout=0.5)
    assert net.recurrent.impl == "equations"  # torch's fused cells cannot drop h_{t-1}
    x = torch.randn(3, 6, 2)
    net.eval()
    reference = net.hidden_states(x)
    net.train()
    # the first step reads h_0 = 0: nothing to drop, so it is exactly the evaluation-mode state
    first = net.hidden_states(x[:, :1])
    assert torch.allclose(first[:, 0], reference[:, 0], atol=1e-6)
    assert not torch.allclose(net.hidden_states(x)[:, -1], reference[:, -1], atol=1e-4)
    with pytest.raises(nncompare.UserError, match="recurrent_dropout must be in"):
        create_model(cell, meta, recurrent_dropout=1.2)


def test_mlp_and_tcn_take_batch_norm_and_the_mlp_residual_blocks():
    meta = series_meta(length=8, channels=2)
    x = torch.randn(6, 8, 2)
    torch.manual_seed(0)
    mlp = create_model("mlp", meta, width=16, depth=3, dropout=0.0, norm="batch", residual=True).eval()
    assert [type(m).__name__ for m in mlp.body[:3]] == ["Linear", "FeatureBatchNorm", "ReLU"]
    b = mlp.body
    h = b[2](b[1](b[0](x.flatten(1))))
    h = b[5](b[4](b[3](h))) + h
    h = b[8](b[7](b[6](h))) + h
    assert torch.allclose(mlp(x), mlp.head(h), atol=1e-6)
    tcn = create_model("tcn", meta, num_channels=8, norm="batch")
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in tcn.modules()) == 2 * tcn.levels
    # per-position MLP: batch norm over (B, T, F) keeps shapes and causality in eval mode
    text_meta = nncompare.data.DatasetMeta(name="t", kind="series", task="per_step", input_shape=(10, 3), n_classes=4)
    per_step = create_model("mlp", text_meta, width=8, window=3, norm="batch", residual=True).eval()
    seq = torch.randn(2, 10, 3)
    changed = seq.clone()
    changed[:, 6:] += 1.0
    assert per_step(seq).shape == (2, 10, 4)
    assert torch.allclose(per_step(seq)[:, :6], per_step(changed)[:, :6])
    for name in ("mlp", "tcn"):
        with pytest.raises(nncompare.UserError, match="norm must be one of none, batch"):
            create_model(name, meta, norm="layer")


def test_a_layer_normalised_cell_on_one_input_feature_keeps_its_magnitude():
    # normalising the projection x_t w of a single number would keep only its sign
    meta = series_meta(length=5, channels=1)
    torch.manual_seed(0)
    net = create_model("lstm", meta, hidden_size=8, num_layers=2, norm="layer").eval()
    assert net.recurrent.norms[0].x is None and net.recurrent.norms[1].x is not None  # layer 2 reads 8 features
    x = torch.rand(3, 5, 1) + 0.1
    assert not torch.allclose(net(x), net(2 * x), atol=1e-4)


def test_masked_batch_norm_leaves_the_padding_out_of_its_statistics():
    """A padded batch is normalised as its real steps alone would be, and the running averages too; an
    unpadded batch gets exactly torch's BatchNorm1d."""
    from nncompare.models.cnn import MaskedBatchNorm1d

    torch.manual_seed(0)
    bn, reference = MaskedBatchNorm1d(3), torch.nn.BatchNorm1d(3)
    h = torch.randn(2, 3, 5) * 2 + 1
    lengths = torch.tensor([5, 2])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).float()[:, None, :]  # (B, 1, L)
    padded = h * mask + 100.0 * (1 - mask)  # padding with a value that would wreck the statistics
    out = bn(padded, mask)
    real = torch.cat([h[0], h[1, :, :2]], dim=1)[None]  # the 7 real steps as one unpadded series: (1, 3, 7)
    expected = reference(real)
    assert torch.allclose(torch.cat([out[0], out[1, :, :2]], dim=1)[None], expected, atol=1e-5)
    assert torch.allclose(bn.running_mean, reference.running_mean, atol=1e-6) and torch.allclose(bn.running_var, reference.running_var, atol=1e-5)
    plain, torch_bn = MaskedBatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert torch.equal(plain(h), torch_bn(h)) and torch.equal(plain(h, None), torch_bn(h))
    assert set(plain.state_dict()) == set(torch_bn.state_dict())  # runs stored before load as they were


@pytest.mark.parametrize("name", ["tcn", "gru", "lstm", "rnn"])
def test_a_causal_model_reads_out_its_last_step_or_the_mean_of_its_real_steps(name):
    """readout "last" classifies by the last real step's features, "mean" by their mean over the real
    steps; either way a padded series scores what it scores unpadded."""
    meta = series_meta(length=12)
    torch.manual_seed(0)
    x = torch.randn(3, *meta.input_shape)
    lengths = torch.tensor([12, 7, 3])
    for readout in ("last", "mean"):
        torch.manual_seed(0)
        model = create_model(name, meta, readout=readout).eval()
        with torch.no_grad():
            h = model.features(x) if name == "tcn" else model.hidden_states(x)  # (B, T, F)
            pooled = h[:, -1] if readout == "last" else h.mean(1)
            torch.testing.assert_close(model(x), model.head(pooled))
            padded = model(x, lengths)
            for i, n in enumerate(lengths.tolist()):
                torch.testing.assert_close(padded[i], model(x[i : i + 1, :n])[0], atol=1e-5, rtol=1e-5)


def test_the_tcns_batch_norm_leaves_the_padding_out_as_the_cnns_does():
    """Training on a padded batch: whatever the padding holds, the real steps' features and the running
    statistics are the same (causal convolutions never read it; batch norm leaves it out)."""
    meta = series_meta(length=10)
    lengths = torch.tensor([10, 4, 7])
    torch.manual_seed(0)
    x = torch.randn(3, *meta.input_shape)
    real = (torch.arange(10)[None, :] < lengths[:, None])[:, :, None]  # (B, T, 1)
    outs = []
    for pad in (0.0, 100.0):
        torch.manual_seed(1)
        model = create_model("tcn", meta, norm="batch").train()
        features = model.features(torch.where(real, x, torch.full_like(x, pad)), lengths)
        outs.append((features * real, model.blocks[0].norm1.running_mean.clone(), model.blocks[-1].norm2.running_var.clone()))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)


def test_the_tcn_takes_batch_norm_by_default_on_whole_series_only():
    """As the series CNN: batch norm when a whole series gets one output; none for images, text and one
    output per step; an explicit norm wins."""
    from nncompare.data import DatasetMeta

    def batch_norms(meta, **kw):
        return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in create_model("tcn", meta, num_channels=4, **kw).modules())

    series = series_meta(length=8, channels=2)
    assert batch_norms(series) == 2 * create_model("tcn", series).levels
    assert batch_norms(series, norm="none") == 0
    regress = DatasetMeta(name="r", kind="series", task="regress", input_shape=(8, 2), n_classes=0, n_outputs=1)
    assert batch_norms(regress) > 0
    per_step = DatasetMeta(name="p", kind="series", task="per_step", input_shape=(10, 3), n_classes=4)
    image = DatasetMeta(name="i", kind="image", task="classify", input_shape=(1, 8, 8), n_classes=3)
    text = DatasetMeta(name="t", kind="text", task="per_step", input_shape=(12,), n_classes=20)
    assert batch_norms(per_step) == batch_norms(image) == batch_norms(text) == 0
    assert batch_norms(image, norm="batch") > 0


def test_the_lstm_forget_bias_sets_the_forget_gates_only():
    meta = series_meta(length=12, channels=2, n_classes=3)
    torch.manual_seed(0)
    lstm = create_model("lstm", meta, hidden_size=8, num_layers=2, forget_bias=1.0)
    for k in range(2):  # b_if + b_hf = 1 in every layer; the other gates keep torch's random biases
        total = getattr(lstm.recurrent.fused, f"bias_ih_l{k}") + getattr(lstm.recurrent.fused, f"bias_hh_l{k}")
        assert torch.equal(total[8:16], torch.ones(8))
        assert 0 < total[:8].abs().max() < 1
    torch.manual_seed(0)
    plain = create_model("lstm", meta, hidden_size=8, num_layers=2)  # the default: torch's initialisation
    assert plain.recurrent.fused.bias_ih_l0[8:16].abs().max() < 1 / 8**0.5 + 1e-6
    assert torch.equal(plain.recurrent.fused.weight_hh_l1, lstm.recurrent.fused.weight_hh_l1)  # only the forget biases differ
    with pytest.raises(nncompare.UserError, match="forget_bias"):
        create_model("lstm", meta, forget_bias="open")


def test_the_series_cnn_sizes_its_kernels_to_the_series():
    """The first kernel about 4% of a whole series (5 to 40 steps), each next half of it (at least 5);
    3x3 on images; 5 where every position gets a label; a kernel_size given is kept."""
    from dataclasses import replace

    def kernels(meta, **args):
        return create_model("cnn", meta, **args).kernel_sizes

    assert kernels(series_meta(length=40)) == [5, 5, 5]
    assert kernels(series_meta(length=137)) == [5, 5, 5]
    assert kernels(series_meta(length=251)) == [10, 5, 5]
    assert kernels(series_meta(length=427)) == [17, 8, 5]
    # a series longer than 500 steps is averaged down first, and the kernels are sized to what is left
    assert kernels(series_meta(length=2000)) == [20, 10, 5]  # 500 steps of 4
    assert kernels(series_meta(length=987), downsample=1) == [39, 19, 9]
    assert kernels(series_meta(length=2000), downsample=1) == [40, 20, 10]  # at most InceptionTime's longest kernel
    assert kernels(series_meta(length=2000), depth=4, downsample=1) == [40, 20, 10, 5]
    assert kernels(series_meta(length=2000), channels=[8, 8], downsample=1) == [40, 20]
    assert kernels(replace(series_meta(length=2000), task="per_step", n_classes=3)) == [5, 5, 5]
    assert kernels(image_meta()) == [3, 3, 3]
    assert kernels(series_meta(length=2000), kernel_size=7) == [7, 7, 7]
    # a run stored before the rule recorded kernel_size None: it is rebuilt with the kernels it had
    assert kernels(series_meta(length=2000), kernel_size=None) == [5, 5, 5]
    assert kernels(image_meta(), kernel_size=None) == [3, 3, 3]


def test_a_stored_cnn_rebuilds_with_the_kernels_it_was_trained_with(tmp_path):
    """A run records the kernel sizes the rule chose, not the rule's name; a run of 2026-12-06 that
    recorded kernel_size "auto" (then: the first kernel 1% of the series) is rebuilt with that rule."""
    import json

    import nncompare
    from nncompare.store import load_run
    from nncompare.train import TrainConfig

    result = nncompare.compare("ucr:ArrowHead", models=["cnn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1, reference=False)
    run_dir = result.folder / "cnn-seed0"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_args"]["kernel_size"] == [10, 5, 5]  # ArrowHead: 251 steps
    assert config["model_args"]["multiscale"] is True  # kernels of 10 and 5 side by side in the first layer
    assert config["model_args"]["handcrafted"] is True  # the fixed filters beside it
    stored = load_run(run_dir).model
    assert stored.kernel_sizes == [10, 5, 5] and stored.multiscale and stored.handcrafted
    # as a run of 2026-12-06 evening stored it: the sizes, one per layer, and neither "multiscale" nor "handcrafted"
    single = nncompare.train("ucr:ArrowHead", "cnn", config=TrainConfig(max_epochs=1), kernel_size=[10, 5, 5], handcrafted=False)[0]
    assert not single.multiscale
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in single.state_dict().items()}, str(run_dir / "model.safetensors"))
    del config["model_args"]["multiscale"], config["model_args"]["handcrafted"]
    (run_dir / "config.json").write_text(json.dumps(config))
    stored = load_run(run_dir).model
    assert stored.kernel_sizes == [10, 5, 5] and not stored.multiscale and not stored.handcrafted
    # the same folder as the rule of 2026-12-06 stored it: "auto" with 5-5-5 weights (251 steps < 550)
    legacy = nncompare.train("ucr:ArrowHead", "cnn", config=TrainConfig(max_epochs=1), kernel_size=5, handcrafted=False)[0]
    save_file({k: v.contiguous() for k, v in legacy.state_dict().items()}, str(run_dir / "model.safetensors"))
    config["model_args"]["kernel_size"] = "auto"
    (run_dir / "config.json").write_text(json.dumps(config))
    assert load_run(run_dir).model.kernel_sizes == [5, 5, 5]


def test_the_series_cnn_puts_its_kernel_sizes_side_by_side_in_the_first_layer():
    """On a whole series whose kernels differ, the first layer holds one convolution per kernel size,
    the channels split between them, and keeps the length; short series, per-position tasks, images and
    kernels given by hand keep one convolution, unless multiscale=True (series only)."""
    from dataclasses import replace

    from nncompare.models.cnn import SideBySide

    arrow = create_model("cnn", series_meta(length=251))
    first = arrow.features[0][0]
    assert isinstance(first, SideBySide) and first.kernels == [10, 5]
    assert [(c.out_channels, c.kernel_size[0]) for c in first.convs] == [(16, 10), (16, 5)]
    assert arrow.receptive_field() == 1 + 9 + 4 + 4
    x = torch.randn(3, 251, 2)
    assert arrow(x).shape == (3, 3) and first(x.transpose(1, 2)).shape == (3, 32, 251)
    long = create_model("cnn", series_meta(length=2000), channels=[32, 8, 8], downsample=1)
    assert [(c.out_channels, c.kernel_size[0]) for c in long.features[0][0].convs] == [(11, 40), (11, 20), (10, 10)]
    # a padded series scores as the same series unpadded: the mask still holds after the side-by-side layer
    arrow.eval()
    short = torch.randn(1, 200, 2)
    padded = torch.cat([short, torch.zeros(1, 51, 2)], 1)
    assert torch.allclose(arrow(padded, torch.tensor([200])), create_model_like(arrow, short), atol=1e-5)

    for meta, args in ((series_meta(length=137), {}), (replace(series_meta(length=251), task="per_step", n_classes=3), {}), (image_meta(), {}), (series_meta(length=251), {"kernel_size": [10, 5, 5]})):
        assert not create_model("cnn", meta, **args).multiscale
    causal = create_model("cnn", replace(series_meta(length=251), task="per_step", n_classes=3), kernel_size=[9, 5, 5], multiscale=True)
    assert causal.multiscale and causal.features[0][0].pads == [(8, 0), (4, 0)]
    assert_causal_series_option(causal, "multiscale")


def assert_causal_series_option(causal, option: str) -> None:
    """A first-layer option of the CNN (`option`): causal where every position gets a label, refused
    on images and for a value that is not a bool."""
    causal.eval()
    a, b = torch.randn(1, 251, 2), torch.randn(1, 251, 2)
    b[:, :100] = a[:, :100]  # later steps differ: the first 100 outputs may not
    assert torch.allclose(causal(a)[:, :100], causal(b)[:, :100], atol=1e-6)
    with pytest.raises(nncompare.UserError, match=f"{option} applies to series"):
        create_model("cnn", image_meta(), **{option: True})
    with pytest.raises(nncompare.UserError, match=f"{option} must be true or false"):
        create_model("cnn", series_meta(length=251), **{option: "yes"})


def test_the_fixed_filters_detect_rises_falls_and_peaks():
    """FixedFilters (Ismail-Fawaz et al. 2022): per input channel, rise and fall filters of 2..64 steps
    and peak filters of 6..96 steps, those no longer than the series; a rise filter of length l gives
    l/2 on a ramp of slope 1, a fall filter -l/2, and a peak filter 0 on a straight line and a positive
    value at the top of a bump; each channel gets its own copy of the bank."""
    from nncompare.models.cnn import FixedFilters

    bank = FixedFilters(1, 251)
    assert bank.out_channels == 17 and bank.longest == 96  # rises and falls of 2..64 (12), peaks of 6..96 (5)
    assert FixedFilters(1, 24).out_channels == 8 + 3 and FixedFilters(3, 24).out_channels == 33  # 2..16, peaks of 6, 12 and 24
    ramp = torch.arange(300.0)[None, None, :]
    out = bank(ramp)[0, :, 150]  # (filters,) far from the ends
    rises, falls, peaks = out[0:12:2], out[1:12:2], out[12:]
    assert torch.allclose(rises, torch.tensor([1.0, 2, 4, 8, 16, 32])) and torch.allclose(falls, -rises)
    assert torch.allclose(peaks, torch.zeros(5), atol=1e-3)  # a straight line has no peak
    bump = torch.exp(-((torch.arange(300.0) - 150) / 10) ** 2)[None, None, :]
    assert (bank(bump)[0, 12:, 150] > 0).all()  # the top of a bump, at every scale
    assert bank(ramp).shape == (1, 17, 300)
    causal = FixedFilters(1, 251, causal=True)
    a, b = torch.randn(1, 1, 200), torch.randn(1, 1, 200)
    b[..., :100] = a[..., :100]
    assert torch.allclose(causal(a)[..., :100], causal(b)[..., :100]) and not torch.allclose(bank(a)[..., :100], bank(b)[..., :100])


def test_the_series_cnn_takes_the_fixed_filters_beside_its_first_layer():
    """By default the CNN of a whole series of one channel puts the fixed filters' outputs beside its
    first layer's (batch norm and the second layer read both); they are never trained, yet stored with
    the weights; several channels, images, per-position tasks and residual blocks go without unless
    asked (residual never), and wrong values give one-line errors."""
    from dataclasses import replace

    from nncompare.models.cnn import WithFixed

    net = create_model("cnn", series_meta(length=251, channels=1))
    assert net.handcrafted and net.stored_args["handcrafted"] is True
    assert isinstance(net.features[0][0], WithFixed)
    assert net.features[0][1].num_features == 32 + 17  # one input channel, 17 filters
    assert net.features[1][0].in_channels == 32 + 17
    assert not create_model("cnn", series_meta(length=251)).handcrafted  # two channels: 34 more, by default none
    two = create_model("cnn", series_meta(length=251), handcrafted=True)
    assert two.features[0][1].num_features == 32 + 2 * 17  # each channel its own filters, when asked
    from nncompare.analysis import theoretical_receptive_field

    assert net.receptive_field() == theoretical_receptive_field(net) == 1 + 95 + 4 + 4  # the longest fixed filter spans 96 steps
    assert theoretical_receptive_field(plain := create_model("cnn", series_meta(length=251, channels=1), handcrafted=False)) == 1 + 9 + 4 + 4  # 10 and 5 side by side span 10
    assert "features.0.0.fixed.weight" in net.state_dict()
    assert not any(p is net.features[0][0].fixed.weight for p in net.parameters())
    before = net.features[0][0].fixed.weight.clone()
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.randn(4, 251, 1)).sum().backward()
    opt.step()
    assert torch.equal(net.features[0][0].fixed.weight, before)
    assert not plain.handcrafted and plain.features[0][1].num_features == 32
    for meta, args in ((image_meta(), {}), (replace(series_meta(length=251, channels=1), task="per_step", n_classes=3), {}), (series_meta(length=251, channels=1), {"residual": True}), (series_meta(length=251, channels=1), {"norm": "none"})):
        assert not create_model("cnn", meta, **args).handcrafted
    assert_causal_series_option(create_model("cnn", replace(series_meta(length=251), task="per_step", n_classes=3), handcrafted=True), "handcrafted")
    with pytest.raises(nncompare.UserError, match="residual"):
        create_model("cnn", series_meta(length=251), handcrafted=True, residual=True)


def create_model_like(model, x):
    """`model`'s outputs for `x` with the same weights on a model built for x's length (251 -> 200 steps)."""
    from dataclasses import replace

    other = create_model("cnn", replace(series_meta(length=x.shape[1]), varying_length=True), kernel_size=model.kernel_sizes, multiscale=True)
    other.load_state_dict(model.state_dict())
    return other.eval()(x)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_recurrent_model_reads_a_long_series_in_segments(cell):
    """A whole series longer than MAX_RECURRENT_STEPS is read p steps per recurrent step: the model
    computes what the same weights compute on the series reshaped to (L/p, p*C), a padded series scores
    as the same series unpadded, and the states shown per step repeat each segment's."""
    from dataclasses import replace

    from nncompare.models.rnn import MAX_RECURRENT_STEPS

    length = 2 * MAX_RECURRENT_STEPS + 2  # p = 3
    pad = -length % 3  # the zeros that complete the last segment
    net = create_model(cell, series_meta(length=length)).eval()
    assert net.segment == 3 and net.stored_args == {"segment": 3}
    assert net.recurrent.fused.input_size == 3 * 2
    x = torch.randn(4, length, 2)
    assert pad > 0
    folded = torch.cat([x, torch.zeros(4, pad, 2)], 1).reshape(4, (length + pad) // 3, 6)
    plain = create_model(cell, series_meta(length=(length + pad) // 3, channels=6), segment=1).eval()
    plain.load_state_dict(net.state_dict())
    assert torch.allclose(net(x), plain(folded), atol=1e-6)
    states = net.hidden_states(x)
    assert states.shape == (4, length, 64)
    assert torch.equal(states[:, 0], states[:, 2]) and torch.allclose(states[:, 3], plain.hidden_states(folded)[:, 1], atol=1e-6)
    # a series of 100 real steps, zero-padded to the run's length, scores as the 100 steps alone
    short = torch.randn(1, 100, 2)
    padded = torch.cat([short, torch.zeros(1, length - 100, 2)], 1)
    alone = create_model(cell, replace(series_meta(length=100), varying_length=True), segment=3).eval()
    alone.load_state_dict(net.state_dict())
    assert torch.allclose(net(padded, torch.tensor([100])), alone(short), atol=1e-6)
    net.train()
    loss = net(x).sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_short_series_images_text_and_per_position_tasks_are_read_step_by_step():
    from dataclasses import replace

    from nncompare.models.rnn import MAX_RECURRENT_STEPS

    per_step = replace(series_meta(length=4 * MAX_RECURRENT_STEPS), task="per_step", n_classes=3)
    for meta in (series_meta(length=MAX_RECURRENT_STEPS), image_meta(height=4 * MAX_RECURRENT_STEPS), per_step):
        assert create_model("gru", meta).segment == 1
    assert create_model("gru", series_meta(length=MAX_RECURRENT_STEPS + 1)).segment == 2
    assert create_model("gru", series_meta(length=4 * MAX_RECURRENT_STEPS), segment=1).recurrent.fused.input_size == 2
    with pytest.raises(nncompare.UserError, match="segment applies to a whole series"):
        create_model("lstm", per_step, segment=4)
    for bad in (0, 2.5, True, "long"):
        with pytest.raises(nncompare.UserError, match="segment must be a positive whole number"):
            create_model("rnn", series_meta(length=300), segment=bad)


def test_a_stored_recurrent_run_rebuilds_with_the_segments_it_was_trained_with(tmp_path):
    """A run records the segment the rule chose; a run stored before segments existed (no key) read
    every step and is rebuilt so."""
    import json

    from safetensors.torch import save_file

    from nncompare.store import load_run
    from nncompare.train import TrainConfig

    result = nncompare.compare("ucr:ArrowHead", models=["gru"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1, reference=False)
    run_dir = result.folder / "gru-seed0"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_args"]["segment"] == 4  # 251 steps: 63 recurrent steps of 4
    assert load_run(run_dir).model.segment == 4
    from nncompare.report.overview import receptive_field_text

    assert receptive_field_text("gru", {}, "classify", config) == "every earlier step, 4 steps per recurrent step"  # the report's overview
    old = nncompare.train("ucr:ArrowHead", "gru", config=TrainConfig(max_epochs=1), segment=1)[0]
    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, str(run_dir / "model.safetensors"))
    del config["model_args"]["segment"]
    (run_dir / "config.json").write_text(json.dumps(config))
    stored = load_run(run_dir).model
    assert stored.segment == 1 and stored.recurrent.fused.input_size == 1
    assert receptive_field_text("gru", {}, "classify", config) == "every earlier step"


@pytest.mark.parametrize("name", ["cnn", "tcn"])
def test_a_convolutional_model_averages_a_long_series_down_first(name):
    """A whole series longer than MAX_CONVOLVED_STEPS is averaged over windows of ceil(L / 500) steps:
    the model computes what the same weights compute on the averaged series read as it is, its layers
    are sized to the averaged length, a padded series scores as the same series unpadded, and the
    receptive field is counted in input steps."""
    from dataclasses import replace

    from nncompare.models.layers import MAX_CONVOLVED_STEPS

    length = 3 * 354  # f = ceil(1062 / 500) = 3: 354 averaged steps
    assert -(-length // MAX_CONVOLVED_STEPS) == 3
    net = create_model(name, series_meta(length=length, channels=1)).eval()
    assert net.downsample == 3 and net.stored_args["downsample"] == 3
    plain = create_model(name, series_meta(length=354, channels=1), downsample=1).eval()
    assert (net.kernel_sizes == plain.kernel_sizes) if name == "cnn" else (net.levels == plain.levels)
    plain.load_state_dict(net.state_dict())
    x = torch.randn(4, length, 1)
    averaged = x.reshape(4, 354, 3, 1).mean(2)
    assert torch.allclose(net(x), plain(averaged), atol=1e-5)
    assert net.receptive_field() == 3 * plain.receptive_field()
    # 100 real steps zero-padded to the run's length score as the 100 alone (34 averaged steps, the last of one)
    short = torch.randn(1, 100, 1)
    padded = torch.cat([short, torch.zeros(1, length - 100, 1)], 1)
    if name == "cnn":  # fixed filters are sized to the series: a model of 100 steps has others, so none here
        net = create_model(name, series_meta(length=length, channels=1), handcrafted=False).eval()
    same = {"kernel_size": net.kernel_sizes, "multiscale": True, "handcrafted": False} if name == "cnn" else {"levels": net.levels}
    alone = create_model(name, replace(series_meta(length=100, channels=1), varying_length=True), downsample=3, **same).eval()
    alone.load_state_dict(net.state_dict())
    assert torch.allclose(net(padded, torch.tensor([100])), alone(short), atol=1e-5)
    assert torch.allclose(net(padded, torch.tensor([100])), net(torch.cat([short, torch.randn(1, length - 100, 1)], 1), torch.tensor([100])), atol=1e-5)  # whatever the padding holds
    net.train()
    net(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_short_series_images_and_per_position_tasks_are_not_averaged_down():
    from dataclasses import replace

    from nncompare.models.layers import MAX_CONVOLVED_STEPS

    per_step = replace(series_meta(length=4 * MAX_CONVOLVED_STEPS), task="per_step", n_classes=3)
    for name in ("cnn", "tcn"):
        for meta in (series_meta(length=MAX_CONVOLVED_STEPS), image_meta(), per_step):
            assert create_model(name, meta).downsample == 1
        assert create_model(name, series_meta(length=MAX_CONVOLVED_STEPS + 1)).downsample == 2
        assert create_model(name, series_meta(length=4 * MAX_CONVOLVED_STEPS), downsample=1).downsample == 1
        with pytest.raises(nncompare.UserError, match="downsample applies to a whole series"):
            create_model(name, per_step, downsample=4)
        for bad in (0, 2.5, True, "long"):
            with pytest.raises(nncompare.UserError, match="downsample must be a positive whole number"):
                create_model(name, series_meta(length=300), downsample=bad)


def test_a_stored_convolutional_run_rebuilds_with_the_averaging_it_was_trained_with(tmp_path):
    """A run records the factor the rule chose; a run stored before the rule (no key) read every step
    and is rebuilt so."""
    import json

    import numpy as np

    from nncompare.models.registry import stored_model_args
    from nncompare.report.overview import receptive_field_text
    from nncompare.store import load_run
    from nncompare.train import TrainConfig

    rng = np.random.default_rng(0)
    rows = [[k % 2, *rng.normal(size=1200) + (k % 2)] for k in range(40)]
    for split in ("TRAIN", "TEST"):
        np.savetxt(tmp_path / f"Long_{split}.txt", np.array(rows), fmt="%.5f")
    result = nncompare.compare(str(tmp_path / "Long_TRAIN.txt"), models=["cnn", "tcn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path / "runs", workers=1, reference=False)
    for name in ("cnn", "tcn"):
        run_dir = result.folder / f"{name}-seed0"
        config = json.loads((run_dir / "config.json").read_text())
        assert config["model_args"]["downsample"] == 3  # 1200 steps: 400 averaged
        assert load_run(run_dir).model.downsample == 3
        if name == "cnn":
            assert receptive_field_text("cnn", {"receptive_field": 3}, "classify", config).endswith("the series averaged over every 3 steps first, then averaged over the whole input")
        del config["model_args"]["downsample"]
        old = create_model(name, load_run(run_dir).meta, **stored_model_args(name, config["model_args"]))
        assert old.downsample == 1
