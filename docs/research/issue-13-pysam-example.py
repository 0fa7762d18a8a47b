# ruff: noqa: E501, E702, RUF005  (a research script, kept as it ran)
"""Minimal one-year bill with NREL SAM's PySAM.Utilityrate5 (nrel-pysam 7.1.1).

Run:  /tmp/pysam/.venv/bin/python /tmp/pysam/example.py
Conventions (checked in ssc/cmod_utilityrate5.cpp):
  * Load.load and SystemOutput.gen are POWER in kW (average over the step), both >= 0.
    SAM computes energy per step = kW * (1/steps_per_hour); net = gen - load (>0 = export).
  * length must be 8760 * n (n = 1..60 steps per hour); no leap day (drop Feb 29).
    load may be 8760 while gen is sub-hourly (load is then held flat over the hour).
  * Hour 0 = Jan 1 00:00-01:00 local standard time; Jan 1 is assumed to be a MONDAY.
  * Schedules are 12x24, 1-based period numbers; matrices are lists of rows.
"""
import numpy as np
import PySAM.Utilityrate5 as ur5

NDAY = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
HUGE = 1e38  # "no upper bound" for tiers
_ALIVE = []


def bill(load_kw, gen_kw, rates: dict):
    m = ur5.new()
    m.Lifetime.analysis_period = 1
    m.Lifetime.system_use_lifetime_output = 0
    m.Lifetime.inflation_rate = 0
    m.SystemOutput.gen = list(map(float, gen_kw))
    m.SystemOutput.degradation = [0]
    m.Load.load = list(map(float, load_kw))
    m.Load.load_escalation = [0]
    base = dict(
        en_electricity_rates=1, rate_escalation=[0],
        ur_metering_option=2,            # 0 NM kWh rollover, 1 NM $ rollover, 2 net billing, 3 NB $ carryover, 4 buy-all-sell-all
        ur_monthly_fixed_charge=0.0, ur_monthly_min_charge=0.0, ur_annual_min_charge=0.0,
        ur_nm_yearend_sell_rate=0.0, ur_nm_credit_month=11, ur_nm_credit_rollover=0,
        ur_sell_eq_buy=0, ur_en_ts_sell_rate=0, ur_en_ts_buy_rate=0,
        ur_dc_enable=0, ur_enable_billing_demand=0,
        ur_ec_sched_weekday=[[1] * 24] * 12, ur_ec_sched_weekend=[[1] * 24] * 12,
        ur_ec_tou_mat=[[1, 1, HUGE, 0, 0.20, 0.0]],  # period, tier, max, max-unit(0=kWh), buy $/kWh, sell $/kWh
    )
    base.update(rates)
    m.ElectricityRates.assign(base)
    m.execute(0)
    _ALIVE.append(m)  # PITFALL: m.Outputs is a view into m's C data; if m is freed -> segfault
    return m.Outputs


def synthetic_year(steps_per_hour=1):
    """Deterministic toy home: 0.4 kW base + 2 kW 17-21h; PV 4 kW peak 7-19h, summer stronger."""
    n = 8760 * steps_per_hour
    t = np.arange(n) / steps_per_hour              # hour of year (float)
    hod = t % 24
    doy = t // 24
    load = 0.4 + 2.0 * ((hod >= 17) & (hod < 21)) + 0.3 * np.sin(2 * np.pi * doy / 7) ** 2
    season = 0.6 + 0.4 * np.sin(np.pi * (doy - 80) / 365) ** 2 * (doy > 80)
    pv = np.clip(np.sin(np.pi * (hod - 7) / 12), 0, None) * 4.0 * season
    if steps_per_hour > 1:  # a 1-step spike to show sub-hourly demand
        load[int(200.25 * 24 * steps_per_hour)] += 6.0
    return load, pv


def monthly(o, name):
    return np.array(getattr(o, name)).reshape(-1, 12)[1]  # *_ym outputs are (years+1) x 12, row 0 = year 0


def show(title, o):
    bill_w = monthly(o, "utility_bill_w_sys_ym")
    print(f"\n== {title}")
    print(f"  annual bill w/o system {o.utility_bill_wo_sys_year1:10.2f}   with system {o.utility_bill_w_sys_year1:10.2f}")
    print("  month:        " + " ".join(f"{i+1:7d}" for i in range(12)))
    for lab, key in [("bill_w_sys", "utility_bill_w_sys_ym"), ("energy", "charge_w_sys_ec_ym"),
                     ("fixed", "charge_w_sys_fixed_ym"), ("minimum", "charge_w_sys_minimum_ym"),
                     ("dc_flat", "charge_w_sys_dc_fixed_ym"), ("dc_tou", "charge_w_sys_dc_tou_ym")]:
        v = monthly(o, key)
        if np.any(np.abs(v) > 1e-9) or lab == "bill_w_sys":
            print(f"  {lab:12s}" + " ".join(f"{x:7.2f}" for x in v))
    for lab, key in [("nb_credits", "year1_net_billing_credits"), ("true_up", "year1_true_up_credits"),
                     ("excess_kWh", "year1_excess_kwhs_earned"), ("cum_excess", "year1_monthly_cumulative_excess_generation"),
                     ("nm_$applied", "year1_nm_dollars_applied"), ("2m_sales", "year1_two_meter_sales")]:
        v = np.array(getattr(o, key))
        if np.any(np.abs(v) > 1e-9):
            print(f"  {lab:12s}" + " ".join(f"{x:7.2f}" for x in v))
    return bill_w


if __name__ == "__main__":
    load, pv = synthetic_year(1)
    net = pv - load
    imp, exp = np.clip(-net, 0, None), np.clip(net, 0, None)
    mi = np.cumsum([0] + NDAY) * 24
    print(f"load {load.sum():.1f} kWh  pv {pv.sum():.1f} kWh  import {imp.sum():.1f}  export {exp.sum():.1f}")

    # weekday check: SAM's hour-of-year -> period with weekday=2, weekend=1
    o = bill(load, pv, dict(ur_ec_sched_weekday=[[2] * 24] * 12, ur_ec_sched_weekend=[[1] * 24] * 12,
                            ur_ec_tou_mat=[[1, 1, HUGE, 0, 0.1, 0], [2, 1, HUGE, 0, 0.2, 0]]))
    sched = np.array(o.year1_hourly_ec_tou_schedule)[::24][:14]
    print("period of days 1..14 (2=weekday):", sched.astype(int).tolist(), "-> Jan 1 is Monday")

    # A. flat 0.20 buy / 0.05 sell, net billing; check against numpy
    A = dict(ur_ec_tou_mat=[[1, 1, HUGE, 0, 0.20, 0.05]], ur_monthly_fixed_charge=10.0)
    o = bill(load, pv, A)
    b = show("A flat 0.20/0.05, fixed $10/mo, net billing (2)", o)
    hand = np.array([(imp[mi[k]:mi[k+1]].sum() * 0.20 - exp[mi[k]:mi[k+1]].sum() * 0.05 + 10) for k in range(12)])
    print("  numpy check max |diff| =", np.abs(hand - b).max(), "; wo_sys = load*0.2+120:",
          round(load.sum() * 0.2 + 120, 2))

    # B. 2-period TOU: peak 16-21h weekdays (period 2) 0.40/0.08; else 0.15/0.04
    wk = [[1] * 16 + [2] * 5 + [1] * 3] * 12
    TOU = dict(ur_ec_sched_weekday=wk, ur_ec_sched_weekend=[[1] * 24] * 12,
               ur_ec_tou_mat=[[1, 1, HUGE, 0, 0.15, 0.04], [2, 1, HUGE, 0, 0.40, 0.08]])
    o = bill(load, pv, TOU)
    b = show("B TOU 2 periods, net billing (2)", o)
    per = np.array(o.year1_hourly_ec_tou_schedule)
    buy = np.where(per == 2, 0.40, 0.15); sell = np.where(per == 2, 0.08, 0.04)
    hand = np.array([(imp * buy - exp * sell)[mi[k]:mi[k+1]].sum() for k in range(12)])
    print("  numpy check max |diff| =", np.abs(hand - b).max())
    print("  Jan energy by period/tier (row0=tiers, col0=periods, last=totals):",
          np.round(np.array(o.energy_w_sys_ec_jan_tp), 1).tolist())

    # C. two tiers (first 300 kWh/month 0.15, above 0.25; sell 0.05), no system vs net billing
    TIER = dict(ur_ec_tou_mat=[[1, 1, 300, 0, 0.15, 0.05], [1, 2, HUGE, 0, 0.25, 0.05]])
    o = bill(load, pv, TIER)
    show("C 2 tiers 300 kWh/month, net billing (2)", o)
    lm = np.array([load[mi[k]:mi[k+1]].sum() for k in range(12)])
    hand_wo = np.minimum(lm, 300) * 0.15 + np.maximum(lm - 300, 0) * 0.25
    print("  wo_sys numpy check max |diff| =", np.abs(hand_wo - monthly(o, "utility_bill_wo_sys_ym")).max())
    # tiers + TOU: tier bound is on TOTAL monthly kWh, split pro rata across periods (monthly netting options)
    TT = dict(TOU, ur_ec_tou_mat=[[1, 1, 300, 0, 0.15, 0.04], [1, 2, HUGE, 0, 0.25, 0.04],
                                  [2, 1, 300, 0, 0.40, 0.08], [2, 2, HUGE, 0, 0.50, 0.08]])
    o = bill(load, pv * 0, TT)
    print("  TOU+tier no-PV Jan energy_wo (periods x tiers):", np.round(np.array(o.energy_wo_sys_ec_jan_tp), 1).tolist())

    # D. demand: flat $10/kW + $5/kW in TOU period 2 (weekday 16-21h), with TOU energy
    D = dict(TOU, ur_dc_enable=1, ur_dc_sched_weekday=wk, ur_dc_sched_weekend=[[1] * 24] * 12,
             ur_dc_flat_mat=[[mo, 1, HUGE, 10.0] for mo in range(12)],
             ur_dc_tou_mat=[[1, 1, HUGE, 0.0], [2, 1, HUGE, 5.0]])
    o = bill(load, pv, D)
    show("D TOU energy + demand flat $10/kW + peak-period $5/kW", o)
    print("  monthly peak w/ sys kW:", np.round(o.year1_monthly_peak_w_system, 2).tolist())
    print("  TOU peaks (row0=periods):", np.round(np.array(o.monthly_tou_demand_peak_w_sys), 2)[:3].tolist())

    # E. metering options on TOU + $10 fixed + $15 monthly minimum, true-up rate 0.03 in December
    E = dict(TOU, ur_monthly_fixed_charge=10.0, ur_monthly_min_charge=15.0, ur_nm_yearend_sell_rate=0.03)
    names = {0: "net metering, kWh rollover + true-up", 1: "net metering, $ rollover",
             2: "net billing (timestep, no carryover)", 3: "net billing, $ carryover", 4: "buy all - sell all"}
    big = pv * 1.6  # larger PV so surpluses occur
    for opt in range(5):
        o = bill(load, big, dict(E, ur_metering_option=opt))
        show(f"E{opt} {names[opt]}", o)

    # F. sub-hourly: 15-min data (35040 steps); demand uses the 15-min value, not an hourly average
    l4, p4 = synthetic_year(4)
    o4 = bill(l4, p4, D)
    lh, ph = l4.reshape(-1, 4).mean(1), p4.reshape(-1, 4).mean(1)
    oh = bill(lh, ph, D)
    print("\n== F 15-min vs hourly-mean of the same data (rate D)")
    print("  July peak w/o sys kW 15-min:", round(o4.year1_monthly_peak_wo_system[6], 3),
          " hourly:", round(oh.year1_monthly_peak_wo_system[6], 3))
    print("  annual bill w sys 15-min:", round(o4.utility_bill_w_sys_year1, 2), " hourly:", round(oh.utility_bill_w_sys_year1, 2))
    # load 8760 + gen 35040 is accepted (load held flat within the hour)
    o_mix = bill(lh, p4, D)
    print("  load 8760 + gen 35040 accepted; bill:", round(o_mix.utility_bill_w_sys_year1, 2))
