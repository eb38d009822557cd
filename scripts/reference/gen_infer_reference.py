#!/usr/bin/env python3
"""Generates infer/tests/reference/numpyro_extra.json: reference values from the real
NumPyro (and ArviZ for the rank-normalized ESS, which NumPyro lacks) that the infer
crate's tests (infer/tests/numpyro_reference.rs) compare ferrax against.

What it writes
  * diagnostics: fixed draws of shape (chains, draws) made here with numpy's PCG64
    (AR(1) chains with several rho, a shifted chain, odd length, one chain, heavy tails
    with ties, a short and a long case; the draws themselves are stored, so the Rust
    side needs no generator) and, for each, NumPyro's split_gelman_rubin,
    gelman_rubin, effective_sample_size, autocorrelation / autocovariance (first lags,
    per chain), hpdi at several probabilities, numpyro.diagnostics.summary, numpy
    quantiles, ArviZ's ess_bulk / ess_tail / ess_mean, and bulk / tail ESS computed
    with NumPyro's ESS estimator on scipy-rank-normalized split chains (ferrax's
    definition; see the JSON's diagnostics_notes).
  * distributions: log_prob (float64 and float32) at fixed points, jax.grad of the
    summed float64 log_prob with respect to the value and each float parameter, and
    mean and variance where NumPyro defines them, for the distributions ferrax
    implements that tests/reference/distributions.json does not cover (VonMises, LKJCholesky,
    TruncatedNormal / TruncatedDistribution, MixtureSameFamily, HalfCauchy, Laplace,
    Logistic, Chi2, InverseGamma, Weibull, Pareto, Gumbel, NegativeBinomial2,
    Geometric, probs-parameterised Bernoulli / Categorical, MVN from a covariance,
    Delta), mean / variance of the ones it does cover, and log_prob at points outside
    the support (-inf in NumPyro). Two NegativeBinomial2 columns come from mpmath
    (NumPyro's carry jax betaln's ~4e-7 error).

Versions used for the committed file: jax 0.10.2, numpyro 0.22.0, numpy 2.4.6,
scipy 1.17.1, arviz 0.23.4, mpmath 1.3.0, Python 3.11.7, CPU (the JSON records them).
Rerun with the same versions ("jax[cpu]==0.10.2" numpyro==0.22.0 arviz==0.23.4) to
reproduce the committed file byte for byte.

How to rerun (a developer tool; CI never runs it):
    python3 -m pip install "jax[cpu]==0.10.2" numpyro==0.22.0 arviz==0.23.4 scipy mpmath
    python3 scripts/reference/gen_infer_reference.py
The output is deterministic for fixed library versions.
"""

import json
import math
import os
import platform
import sys
import warnings

warnings.filterwarnings("ignore")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platform_name", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import scipy  # noqa: E402
from numpyro import diagnostics as nd  # noqa: E402
from scipy import stats  # noqa: E402

try:
    import arviz  # noqa: E402
    from arviz.stats.diagnostics import _ess_bulk, _ess_mean, _ess_tail  # noqa: E402
except Exception:  # pragma: no cover - ArviZ is optional
    arviz = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "infer", "tests", "reference", "numpyro_extra.json")


def num(x):
    """A float as JSON: shortest round-trip repr, non-finite as strings."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def num32(x):
    """A float32 as its shortest round-trip decimal (parse it directly as f32)."""
    x = np.float32(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    # numpy prints the shortest decimal that round-trips to this float32; any decimal
    # of at most 9 digits survives the trip through a Python float unchanged.
    return float(str(x))


def tolist(a, f=num):
    a = np.asarray(a)
    if a.ndim == 0:
        return f(a)
    return [tolist(v, f) for v in a]


# ---------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------


def ar1(rng, chains, n, rho, shift=None, burn=50):
    out = np.empty((chains, n))
    for c in range(chains):
        x = rng.standard_normal() / math.sqrt(1.0 - rho * rho)
        for _ in range(burn):
            x = rho * x + rng.standard_normal()
        for t in range(n):
            x = rho * x + rng.standard_normal()
            out[c, t] = x
    if shift is not None:
        out = out + np.asarray(shift)[:, None]
    return out


def make_cases():
    cases = []
    rng = np.random.default_rng(20261125)
    cases.append(("iid_normal_4x200", "AR(1) rho=0 (iid N(0,1))", ar1(rng, 4, 200, 0.0)))
    cases.append(("ar1_rho0.5_4x200", "AR(1) rho=0.5", ar1(rng, 4, 200, 0.5)))
    cases.append(("ar1_rho0.9_4x200", "AR(1) rho=0.9", ar1(rng, 4, 200, 0.9)))
    cases.append(
        ("ar1_rho-0.5_4x200", "AR(1) rho=-0.5 (antithetic: ESS above the draw count)",
         ar1(rng, 4, 200, -0.5)))
    cases.append(
        ("ar1_rho0.5_shifted_4x200", "AR(1) rho=0.5, chain 3 shifted by +1.5",
         ar1(rng, 4, 200, 0.5, shift=[0.0, 0.0, 0.0, 1.5])))
    cases.append(("ar1_rho0.3_odd_3x151", "AR(1) rho=0.3, odd length (split drops the middle draw)",
                  ar1(rng, 3, 151, 0.3)))
    cases.append(("ar1_rho0.7_1x300", "one chain, AR(1) rho=0.7", ar1(rng, 1, 300, 0.7)))
    t = np.round(stats.t.rvs(df=2.0, size=(4, 200), random_state=rng), 1)
    cases.append(("student_t2_rounded_4x200",
                  "iid Student-t(2) rounded to 0.1 (heavy tails, many ties)", t))
    cases.append(("ar1_rho0.4_2x10", "AR(1) rho=0.4, short chains", ar1(rng, 2, 10, 0.4)))
    cases.append(("ar1_rho0.95_2x1000", "AR(1) rho=0.95, long chains (many lags before the cutoff)",
                  ar1(rng, 2, 1000, 0.95)))
    return cases


def z_scale(x):
    """Rank-normalization of Vehtari et al. (2021): average ranks over all draws,
    z = Phi^-1((r - 3/8) / (S + 1/4))."""
    r = stats.rankdata(x, method="average").reshape(x.shape)
    return stats.norm.ppf((r - 0.375) / (x.size + 0.25))


def split(x):
    h = x.shape[1] // 2
    return np.concatenate([x[:, :h], x[:, -h:]], axis=0)


def bulk_tail_numpyro_estimator(x):
    bulk = nd.effective_sample_size(z_scale(split(x)))
    ql, qh = np.quantile(x, [0.05, 0.95])
    tl = nd.effective_sample_size(split((x <= ql).astype(float)))
    th = nd.effective_sample_size(split((x <= qh).astype(float)))
    return float(bulk), float(min(tl, th))


HPDI_PROBS = [0.1, 0.5, 0.8, 0.9, 0.95]
QUANTILES = [0.0, 0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975, 1.0]
N_LAGS = 40


def diagnostics():
    out = []
    for name, how, x in make_cases():
        c, n = x.shape
        pooled = x.reshape(-1)
        lags = min(N_LAGS, n)
        acorr = nd.autocorrelation(x, axis=1)[:, :lags]
        acov = nd.autocovariance(x, axis=1)[:, :lags]
        s = nd.summary(x, prob=0.9)["Param:0"]
        bulk, tail = bulk_tail_numpyro_estimator(x)
        case = {
            "name": name,
            "how": how,
            "shape": [c, n],
            "draws": tolist(x),
            "split_gelman_rubin": num(nd.split_gelman_rubin(x)),
            "gelman_rubin": num(nd.gelman_rubin(x)) if c >= 2 else None,
            "effective_sample_size": num(nd.effective_sample_size(x)),
            "autocorrelation": tolist(acorr),
            "autocovariance": tolist(acov),
            "hpdi": {str(p): tolist(nd.hpdi(pooled, prob=p)) for p in HPDI_PROBS},
            "quantiles": {"q": QUANTILES, "values": tolist(np.quantile(pooled, QUANTILES))},
            "summary": {k: num(v) for k, v in s.items()},
            "ess_bulk_numpyro_estimator": num(bulk),
            "ess_tail_numpyro_estimator": num(tail),
        }
        if arviz is not None:
            case["arviz"] = {
                "ess_bulk": num(_ess_bulk(x)),
                "ess_tail": num(_ess_tail(x)),
                "ess_mean": num(_ess_mean(x)),
            }
        out.append(case)
    return out


# ---------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------


def arr(v, dt):
    return jnp.asarray(np.asarray(v, dtype=dt))


def moment(d, which):
    try:
        return tolist(np.asarray(getattr(d, which)))
    except (NotImplementedError, AttributeError, TypeError):
        return None


def entry(cls_name, make, params, points, discrete=False, note=None, float32=True,
          grad=True):
    """make(params_as_arrays) -> numpyro distribution."""
    def conv(dt):
        return {k: v if k == "dimension" else arr(v, dt) for k, v in params.items()}

    d64 = make(conv(np.float64))
    lp64 = np.asarray(d64.log_prob(arr(points, np.int32 if discrete else np.float64)))
    assert lp64.dtype == np.float64, (cls_name, lp64.dtype)
    e = {
        "class": cls_name,
        "params": {k: v if k == "dimension" else tolist(np.asarray(v, dtype=np.float64))
                   for k, v in params.items()},
        "points": tolist(np.asarray(points, dtype=np.float64)),
        "batch_shape": list(d64.batch_shape),
        "event_shape": list(d64.event_shape),
        "log_prob_float64": tolist(lp64),
        "mean": moment(d64, "mean"),
        "variance": moment(d64, "variance"),
    }
    if float32:
        # float32 as a float32 user gets it: x64 off, so no constant promotes to f64.
        with jax.enable_x64(False):
            d32 = make(conv(np.float32))
            lp32 = np.asarray(d32.log_prob(arr(points, np.int32 if discrete else np.float32)))
        assert lp32.dtype == np.float32, (cls_name, lp32.dtype)
        e["log_prob_float32"] = tolist(lp32, num32)
    g = grads(make, params, points, discrete) if grad else None
    if g is not None:
        e["grad_float64"] = g
    if note:
        e["note"] = note
    return e


# Parameters whose NumPyro gradient follows a convention ferrax need not share: a
# probability vector (NumPyro differentiates log(probs[k]) without renormalizing) and a
# covariance matrix (the gradient of a symmetric argument is convention-dependent).
NO_GRAD_PARAMS = {"probs", "covariance_matrix", "dimension"}


def grads(make, params, points, discrete):
    """d/d(value) and d/d(each float parameter) of sum(log_prob) over the points with a
    finite log_prob (float64); None where a gradient is not finite."""
    names = [k for k in params if k not in NO_GRAD_PARAMS]
    fixed = {k: (v if k == "dimension" else arr(v, np.float64))
             for k, v in params.items() if k not in names}
    x_int = arr(points, np.int32)

    def f(x, ps):
        lp = make({**fixed, **ps}).log_prob(x_int if discrete else x)
        return jnp.sum(jnp.where(lp > -jnp.inf, lp, 0.0))

    x0 = arr(points, np.float64)
    p0 = {k: arr(params[k], np.float64) for k in names}
    gx, gp = jax.grad(f, argnums=(0, 1))(x0, p0)
    out = {} if discrete else {"wrt_value": np.asarray(gx)}
    out.update({f"wrt_{k}": np.asarray(v) for k, v in gp.items()})
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        return None
    return {
        "of": "sum over the points with finite log_prob of log_prob (float64)",
        **{k: tolist(v) for k, v in out.items()},
    }


def nb2_mpmath(k, mean, conc):
    import mpmath as mp

    mp.mp.dps = 40
    k, m, c = mp.mpf(k), mp.mpf(mean), mp.mpf(conc)
    v = (mp.loggamma(k + c) - mp.loggamma(c) - mp.loggamma(k + 1)
         + c * mp.log(c / (c + m)) + k * mp.log(m / (c + m)))
    return float(v)


def nb2_grad_mpmath(points, mean, conc):
    import mpmath as mp

    mp.mp.dps = 40

    def total(m, c):
        return mp.fsum(
            mp.loggamma(k + c) - mp.loggamma(c) - mp.loggamma(k + 1)
            + c * mp.log(c / (c + m)) + k * mp.log(m / (c + m))
            for k in (mp.mpf(v) for v in points))

    m, c = mp.mpf(mean), mp.mpf(conc)
    return {
        "wrt_mean": num(float(mp.diff(lambda t: total(t, c), m))),
        "wrt_concentration": num(float(mp.diff(lambda t: total(m, t), c))),
    }


def distributions():
    D = {}
    P = dist
    # Univariate continuous distributions missing from distributions.json.
    D["HalfCauchy"] = entry("numpyro.distributions.HalfCauchy",
                            lambda p: P.HalfCauchy(p["scale"]), {"scale": 1.3},
                            [0.01, 0.5, 1.3, 4.0, 25.0, -0.5])
    D["Laplace"] = entry("numpyro.distributions.Laplace",
                         lambda p: P.Laplace(p["loc"], p["scale"]), {"loc": 0.3, "scale": 1.7},
                         [-4.0, -0.5, 1.1, 6.0])
    D["Laplace_at_loc"] = entry(
        "numpyro.distributions.Laplace", lambda p: P.Laplace(p["loc"], p["scale"]),
        {"loc": 0.3, "scale": 1.7}, [0.3], grad=False,
        note="no gradient at the kink x = loc: jax differentiates |x - loc| there as 1, "
             "ferrax as 0 (both subgradients)")
    D["Logistic"] = entry("numpyro.distributions.Logistic",
                          lambda p: P.Logistic(p["loc"], p["scale"]), {"loc": -0.4, "scale": 0.9},
                          [-30.0, -2.0, -0.4, 0.5, 3.0, 40.0])
    D["Chi2"] = entry("numpyro.distributions.Chi2", lambda p: P.Chi2(p["df"]), {"df": 3.5},
                      [0.05, 0.7, 2.0, 5.5, 14.0])
    D["InverseGamma"] = entry("numpyro.distributions.InverseGamma",
                              lambda p: P.InverseGamma(p["concentration"], p["rate"]),
                              {"concentration": 3.5, "rate": 2.0}, [0.1, 0.4, 0.8, 1.5, 6.0])
    D["Weibull"] = entry("numpyro.distributions.Weibull",
                         lambda p: P.Weibull(p["scale"], p["concentration"]),
                         {"scale": 1.4, "concentration": 2.3}, [0.05, 0.6, 1.2, 2.0, 3.5])
    D["Pareto"] = entry("numpyro.distributions.Pareto",
                        lambda p: P.Pareto(p["scale"], p["alpha"]), {"scale": 0.8, "alpha": 2.5},
                        [0.7, 0.85, 1.5, 3.0, 10.0],
                        note="x = scale itself is left out: NumPyro's Pareto (an exp / affine "
                             "transform of an Exponential) gives -inf there, while the "
                             "density is alpha / scale")
    D["Gumbel"] = entry("numpyro.distributions.Gumbel",
                        lambda p: P.Gumbel(p["loc"], p["scale"]), {"loc": 0.5, "scale": 1.5},
                        [-3.0, -0.5, 0.5, 2.0, 7.0])
    # VonMises: a batch of concentrations through both branches of ln I0 (x <= 8, > 8).
    vm_pts = np.array([-math.pi, -2.0, -0.3, 0.7, 1.9, 3.1])[:, None] * np.ones((1, 6))
    D["VonMises"] = entry(
        "numpyro.distributions.VonMises",
        lambda p: P.VonMises(p["loc"], p["concentration"]),
        {"loc": 0.7, "concentration": [0.01, 0.5, 2.0, 7.9, 10.0, 50.0]}, vm_pts,
        note="points [6,1] broadcast against a batch of 6 concentrations; variance is "
             "NumPyro's circular variance 1 - I1(k)/I0(k)")
    D["VonMises_negative_loc"] = entry(
        "numpyro.distributions.VonMises",
        lambda p: P.VonMises(p["loc"], p["concentration"]),
        {"loc": -2.5, "concentration": 3.0}, [-math.pi, -2.5, 0.0, 0.64, 3.0])
    # Discrete.
    D["NegativeBinomial2"] = entry(
        "numpyro.distributions.NegativeBinomial2",
        lambda p: P.NegativeBinomial2(p["mean"], p["concentration"]),
        {"mean": 3.5, "concentration": 1.7}, [0, 1, 3, 7, 20], discrete=True)
    # jax.scipy.special.betaln (inside NumPyro's GammaPoisson) is off by ~4e-7 relative
    # at k=7 here: keep a 40-digit mpmath value next to NumPyro's.
    nb = D["NegativeBinomial2"]
    nb["log_prob_float64_mpmath"] = [num(nb2_mpmath(k, 3.5, 1.7)) for k in nb["points"]]
    nb["grad_float64_mpmath"] = nb2_grad_mpmath(nb["points"], 3.5, 1.7)
    nb["note"] = ("NumPyro's float64 values carry jax betaln's error (up to ~4e-7 "
                  "relative); log_prob_float64_mpmath is the exact value (mpmath, 40 digits)")
    D["Geometric_probs"] = entry("numpyro.distributions.GeometricProbs",
                                 lambda p: P.GeometricProbs(p["probs"]), {"probs": 0.3},
                                 [0, 1, 2, 5, 12], discrete=True)
    D["Geometric_logits"] = entry("numpyro.distributions.GeometricLogits",
                                  lambda p: P.GeometricLogits(p["logits"]), {"logits": -0.8},
                                  [0, 1, 2, 5, 12], discrete=True)
    D["Bernoulli_probs"] = entry("numpyro.distributions.BernoulliProbs",
                                 lambda p: P.BernoulliProbs(p["probs"]),
                                 {"probs": [0.1, 0.35, 0.5, 0.8, 0.97]}, [0, 1, 1, 0, 1],
                                 discrete=True)
    D["Categorical_probs"] = entry("numpyro.distributions.CategoricalProbs",
                                   lambda p: P.CategoricalProbs(p["probs"]),
                                   {"probs": [0.1, 0.2, 0.45, 0.25]}, [0, 1, 2, 3, 2],
                                   discrete=True)
    D["Poisson_batch"] = entry("numpyro.distributions.Poisson",
                               lambda p: P.Poisson(p["rate"]), {"rate": [0.4, 2.5, 11.0]},
                               [[0, 2, 9], [3, 0, 15]], discrete=True)
    # Multivariate.
    cov = [[2.0, 0.6, -0.3], [0.6, 1.5, 0.4], [-0.3, 0.4, 1.0]]
    D["MultivariateNormal_covariance"] = entry(
        "numpyro.distributions.MultivariateNormal(covariance_matrix=...)",
        lambda p: P.MultivariateNormal(p["loc"], covariance_matrix=p["covariance_matrix"]),
        {"loc": [0.2, -0.5, 1.0], "covariance_matrix": cov},
        [[0.0, 0.0, 0.0], [1.0, -1.0, 2.0], [-2.0, 1.5, 0.3], [0.2, -0.5, 1.0]])
    D["Dirichlet_batch"] = entry(
        "numpyro.distributions.Dirichlet", lambda p: P.Dirichlet(p["concentration"]),
        {"concentration": [[0.5, 1.0, 2.0], [3.0, 3.0, 0.8]]},
        [[[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], [[0.05, 0.05, 0.9], [1 / 3, 1 / 3, 1 / 3]]])
    D["Delta"] = entry("numpyro.distributions.Delta",
                       lambda p: P.Delta(p["v"], p["log_density"]),
                       {"v": 1.25, "log_density": -0.7}, [1.25, 1.0, 2.0])
    # LKJCholesky: values drawn by NumPyro (onion) plus the identity.
    for dim in (2, 3, 4):
        for conc in (0.5, 1.0, 2.0, 5.0):
            key = jax.random.PRNGKey(100 * dim + int(10 * conc))
            draws = np.asarray(P.LKJCholesky(dim, conc).sample(key, (4,)))
            pts = np.concatenate([draws, np.eye(dim)[None]], axis=0)
            D[f"LKJCholesky_D{dim}_c{conc}"] = entry(
                "numpyro.distributions.LKJCholesky",
                lambda p, dim=dim: P.LKJCholesky(dim, p["concentration"]),
                {"dimension": dim, "concentration": conc}, pts,
                note="points: 4 NumPyro onion draws (float64) and the identity")
    # Truncated.
    D["TruncatedNormal_low"] = entry(
        "numpyro.distributions.TruncatedNormal(low=)",
        lambda p: P.TruncatedNormal(p["loc"], p["scale"], low=p["low"]),
        {"loc": 0.5, "scale": 2.0, "low": -1.0}, [-1.5, -1.0, 0.0, 2.0, 9.0])
    D["TruncatedNormal_high"] = entry(
        "numpyro.distributions.TruncatedNormal(high=)",
        lambda p: P.TruncatedNormal(p["loc"], p["scale"], high=p["high"]),
        {"loc": 0.5, "scale": 2.0, "high": 1.5}, [-7.0, -1.0, 0.0, 1.5, 1.6])
    D["TruncatedNormal_both"] = entry(
        "numpyro.distributions.TruncatedNormal(low=, high=)",
        lambda p: P.TruncatedNormal(p["loc"], p["scale"], low=p["low"], high=p["high"]),
        {"loc": 0.5, "scale": 2.0, "low": -1.0, "high": 2.5}, [-1.2, -1.0, 0.3, 2.5, 2.7])
    D["TruncatedNormal_tail_low"] = entry(
        "numpyro.distributions.TruncatedNormal(low=)",
        lambda p: P.TruncatedNormal(p["loc"], p["scale"], low=p["low"]),
        {"loc": 0.0, "scale": 1.0, "low": 4.0}, [4.0, 4.1, 4.5, 6.0],
        note="low in the right tail: 1 - cdf(low) is ~3e-5, so the normalizer needs the "
             "tail probability computed without cancellation")
    D["TruncatedNormal_batch"] = entry(
        "numpyro.distributions.TruncatedNormal(low=, high=)",
        lambda p: P.TruncatedNormal(p["loc"], p["scale"], low=p["low"], high=p["high"]),
        {"loc": [0.0, 1.0, -2.0], "scale": [1.0, 0.5, 3.0], "low": [-0.5, 0.0, -4.0],
         "high": [2.0, 1.5, 5.0]},
        [[0.1, 0.9, -3.5], [1.9, 0.01, 4.0]])
    D["TruncatedCauchy_both"] = entry(
        "numpyro.distributions.TruncatedDistribution(Cauchy, low, high)",
        lambda p: P.TruncatedDistribution(P.Cauchy(p["loc"], p["scale"]), low=p["low"],
                                          high=p["high"]),
        {"loc": -0.5, "scale": 0.7, "low": -2.0, "high": 3.0}, [-2.5, -2.0, -0.5, 1.0, 3.0])
    D["TruncatedLaplace_low"] = entry(
        "numpyro.distributions.TruncatedDistribution(Laplace, low)",
        lambda p: P.TruncatedDistribution(P.Laplace(p["loc"], p["scale"]), low=p["low"]),
        {"loc": 0.3, "scale": 1.7, "low": 1.0}, [0.5, 1.0, 2.0, 6.0])
    D["TruncatedLogistic_high"] = entry(
        "numpyro.distributions.TruncatedDistribution(Logistic, high)",
        lambda p: P.TruncatedDistribution(P.Logistic(p["loc"], p["scale"]), high=p["high"]),
        {"loc": -0.4, "scale": 0.9, "high": 0.5}, [-5.0, -0.4, 0.5, 0.6])
    # MixtureSameFamily.
    D["MixtureSameFamily_Normal"] = entry(
        "numpyro.distributions.MixtureSameFamily(CategoricalProbs, Normal)",
        lambda p: P.MixtureSameFamily(P.CategoricalProbs(p["probs"]),
                                      P.Normal(p["loc"], p["scale"])),
        {"probs": [0.2, 0.5, 0.3], "loc": [-2.0, 0.0, 3.0], "scale": [0.5, 1.0, 2.0]},
        [-6.0, -2.0, -1.0, 0.0, 1.5, 3.0, 12.0])
    D["MixtureSameFamily_Normal_batch"] = entry(
        "numpyro.distributions.MixtureSameFamily(CategoricalLogits, Normal)",
        lambda p: P.MixtureSameFamily(P.CategoricalLogits(p["logits"]),
                                      P.Normal(p["loc"], p["scale"])),
        {"logits": [[0.0, 1.0, -1.0], [2.0, 0.5, 0.1]],
         "loc": [[-1.0, 0.5, 2.0], [0.0, 4.0, -3.0]],
         "scale": [[1.0, 0.3, 0.8], [2.0, 1.0, 0.5]]},
        [[-1.0, 0.0], [0.4, 3.9], [2.5, -3.0]])
    D["MixtureSameFamily_MVN"] = entry(
        "numpyro.distributions.MixtureSameFamily(CategoricalProbs, MultivariateNormal)",
        lambda p: P.MixtureSameFamily(P.CategoricalProbs(p["probs"]),
                                      P.MultivariateNormal(p["loc"], scale_tril=p["scale_tril"])),
        {"probs": [0.35, 0.65], "loc": [[-1.0, 1.0], [2.0, 0.0]],
         "scale_tril": [[[1.0, 0.0], [0.4, 0.8]], [[0.6, 0.0], [-0.3, 1.2]]]},
        [[0.0, 0.0], [-1.0, 1.0], [2.0, 0.0], [3.0, -2.0]])
    D["MixtureSameFamily_Gamma"] = entry(
        "numpyro.distributions.MixtureSameFamily(CategoricalProbs, Gamma)",
        lambda p: P.MixtureSameFamily(P.CategoricalProbs(p["probs"]),
                                      P.Gamma(p["concentration"], p["rate"])),
        {"probs": [0.6, 0.4], "concentration": [2.0, 9.0], "rate": [2.0, 1.5]},
        [0.1, 1.0, 4.0, 6.0, 15.0])
    return D


# Points outside the support: NumPyro's log_prob is -inf there for each of these.
def outside_support():
    P = dist
    cases = {
        "HalfNormal": (lambda p: P.HalfNormal(p["scale"]), {"scale": 1.5}, [-0.5, -3.0]),
        "HalfCauchy": (lambda p: P.HalfCauchy(p["scale"]), {"scale": 1.3}, [-0.5, -3.0]),
        "LogNormal": (lambda p: P.LogNormal(p["loc"], p["scale"]), {"loc": 0.2, "scale": 0.8},
                      [-0.5, -3.0]),
        "Gamma": (lambda p: P.Gamma(p["concentration"], p["rate"]),
                  {"concentration": 2.5, "rate": 1.5}, [-0.5, -3.0]),
        "Exponential": (lambda p: P.Exponential(p["rate"]), {"rate": 1.7}, [-0.5, -3.0]),
        "Beta": (lambda p: P.Beta(p["concentration1"], p["concentration0"]),
                 {"concentration1": 2.0, "concentration0": 3.5}, [-0.5, 1.5]),
        "Chi2": (lambda p: P.Chi2(p["df"]), {"df": 3.5}, [-0.5, -3.0]),
        "InverseGamma": (lambda p: P.InverseGamma(p["concentration"], p["rate"]),
                         {"concentration": 3.5, "rate": 2.0}, [-0.5, -3.0]),
        "Weibull": (lambda p: P.Weibull(p["scale"], p["concentration"]),
                    {"scale": 1.4, "concentration": 2.3}, [-0.5, -3.0]),
        "Pareto": (lambda p: P.Pareto(p["scale"], p["alpha"]), {"scale": 0.8, "alpha": 2.5},
                   [0.7, -1.0]),
        "Uniform": (lambda p: P.Uniform(p["low"], p["high"]), {"low": -1.0, "high": 2.5},
                    [-1.5, 3.0]),
        "VonMises": (lambda p: P.VonMises(p["loc"], p["concentration"]),
                     {"loc": 0.7, "concentration": 2.0}, [4.0, -3.5]),
        "Poisson": (lambda p: P.Poisson(p["rate"]), {"rate": 3.2}, [-1, -3]),
        "Geometric_probs": (lambda p: P.GeometricProbs(p["probs"]), {"probs": 0.3}, [-1, -3]),
        "NegativeBinomial2": (lambda p: P.NegativeBinomial2(p["mean"], p["concentration"]),
                              {"mean": 3.5, "concentration": 1.7}, [-1, -3]),
        "Binomial_probs": (lambda p: P.BinomialProbs(p["probs"], total_count=p["total_count"]),
                           {"probs": 0.3, "total_count": 10}, [-1, 11]),
    }
    out = {}
    for name, (make, params, pts) in cases.items():
        ps = {k: arr(v, np.float64) for k, v in params.items()}
        lp = np.asarray(make(ps).log_prob(arr(pts, np.float64)))
        out[name] = {"params": params, "points": pts, "log_prob_float64": tolist(lp)}
    return out


# Mean / variance of the distributions tests/reference/distributions.json covers
# (log_prob is there; NumPyro's moments are not).
def moments_of_covered():
    P = dist
    ds = {
        "Normal": P.Normal(0.5, 2.0),
        "HalfNormal": P.HalfNormal(1.5),
        "LogNormal": P.LogNormal(0.2, 0.8),
        "Gamma": P.Gamma(2.5, 1.5),
        "Beta": P.Beta(2.0, 3.5),
        "Exponential": P.Exponential(1.7),
        "StudentT": P.StudentT(3.5, 0.5, 1.2),
        "StudentT_df1.5": P.StudentT(1.5, 0.5, 1.2),
        "Cauchy": P.Cauchy(-0.5, 0.7),
        "Uniform": P.Uniform(-1.0, 2.5),
        "Bernoulli_logits": P.BernoulliLogits(jnp.array([-2.0, -0.5, 0.0, 0.7, 3.0])),
        "Poisson": P.Poisson(3.2),
        "Binomial_probs": P.BinomialProbs(0.3, total_count=10),
        "Binomial_logits": P.BinomialLogits(-0.4, total_count=10),
        "Dirichlet": P.Dirichlet(jnp.array([1.5, 2.0, 0.7])),
        "MultivariateNormal_scale_tril": P.MultivariateNormal(
            jnp.array([0.5, -1.0, 2.0]),
            scale_tril=jnp.array([[1.5, 0.0, 0.0], [0.5, 0.75, 0.0], [-0.25, 0.375, 1.25]])),
    }
    params = {
        "StudentT_df1.5": {"df": 1.5, "loc": 0.5, "scale": 1.2},
    }
    out = {}
    for k, d in ds.items():
        out[k] = {"mean": moment(d, "mean"), "variance": moment(d, "variance")}
        if k in params:
            out[k]["params"] = params[k]
    return out


def main():
    versions = {
        "jax": jax.__version__,
        "jaxlib": getattr(__import__("jaxlib"), "__version__", "?"),
        "numpyro": numpyro.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "arviz": arviz.__version__ if arviz is not None else None,
        "mpmath": __import__("mpmath").__version__,
        "python": platform.python_version(),
    }
    doc = {
        "description": "Reference values from the real NumPyro for ferrax-infer: MCMC "
                       "diagnostics on fixed draws, and log_prob / mean / variance of "
                       "distributions that tests/reference/distributions.json lacks.",
        "generated_by": "scripts/reference/gen_infer_reference.py",
        "versions": versions,
        "backend": "cpu",
        "conventions": {
            "float64": "Python repr: shortest decimal that round-trips to the same f64",
            "float32": "shortest decimal that round-trips to the same f32 -- parse as f32",
            "non_finite": "strings 'nan', 'inf', '-inf'",
            "x64": "float64 values with jax_enable_x64 on and float64 params / points; "
                   "float32 ones under jax.enable_x64(False) with float32 params / points "
                   "(integer points for discrete distributions)",
            "draws": "diagnostics draws are [chain][draw] nested lists (float64)",
        },
        "diagnostics_notes": {
            "hpdi": "numpyro.diagnostics.hpdi of the pooled (flattened) draws: with "
                    "L = int(prob * n) the interval spans sorted[i] .. sorted[i + L] "
                    "(L + 1 draws), the narrowest such window, first on ties",
            "quantiles": "numpy.quantile (linear interpolation) of the pooled draws",
            "autocorrelation": "numpyro.diagnostics.autocorrelation / autocovariance "
                               "(biased, FFT) along the draw axis, first 40 lags "
                               "(or all for shorter chains), one row per chain",
            "summary": "numpyro.diagnostics.summary(prob=0.9): its '5.0%'/'95.0%' are "
                       "the 90% HPDI bounds (not quantiles); n_eff is "
                       "effective_sample_size; r_hat is split_gelman_rubin",
            "gelman_rubin": "null for one chain (NumPyro asserts at least 2 chains)",
            "ess_bulk_numpyro_estimator": "NumPyro's effective_sample_size of the split "
                                          "chains rank-normalized with scipy "
                                          "(average ranks, z = Phi^-1((r - 3/8)/(S + 1/4)))",
            "ess_tail_numpyro_estimator": "min over q in (0.05, 0.95) of NumPyro's "
                                          "effective_sample_size of the split indicator "
                                          "chains x <= numpy.quantile(all draws, q)",
            "arviz": "ArviZ's _ess_bulk/_ess_tail/_ess_mean (the Stan / Vehtari et al. "
                     "2021 estimator: Geyer with an extra last-even-lag term and "
                     "tau >= 1/log10(S)); NumPyro has no rank-normalized ESS",
        },
        "diagnostics": diagnostics(),
        "distributions": distributions(),
        "distribution_notes": "log_prob of the points (one call, broadcasting points "
                              "against the batch shape). mean/variance are NumPyro's "
                              "properties (null where NumPyro raises). Discrete points "
                              "are passed as float64/float32 values.",
        "moments_of_covered": moments_of_covered(),
        "outside_support": outside_support(),
        "outside_support_notes": "log_prob at points outside the support (NumPyro: -inf "
                                 "for each); discrete points passed as float64",
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
