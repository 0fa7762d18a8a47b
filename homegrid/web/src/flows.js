// Where each watt goes now, by the same rule as the hub's energy flows (homegrid/energy/flows.py):
// solar serves the home first, then charges the battery, then exports; battery discharge serves the
// home, then exports; grid import serves the home, then charges the battery. Inputs and outputs in W.
export function liveFlows(v) {
  const pos = (x) => (typeof x === "number" && x > 0 ? x : 0);
  const solar = pos(v.solar_power);
  const home = pos(v.home_power);
  const discharge = pos(v.battery_power);
  const charge = pos(-(v.battery_power ?? 0));
  const imp = pos(v.grid_power);
  const exp = pos(-(v.grid_power ?? 0));
  const solar_to_home = Math.min(solar, home);
  const solar_to_battery = Math.min(solar - solar_to_home, charge);
  const solar_to_grid = Math.min(solar - solar_to_home - solar_to_battery, exp);
  const battery_to_home = Math.min(discharge, home - solar_to_home);
  const battery_to_grid = Math.max(0, Math.min(discharge - battery_to_home, exp - solar_to_grid));
  const grid_to_home = Math.max(0, Math.min(imp, home - solar_to_home - battery_to_home));
  const grid_to_battery = Math.max(0, Math.min(imp - grid_to_home, charge - solar_to_battery));
  return {
    solar_to_home, solar_to_battery, solar_to_grid, battery_to_home, battery_to_grid,
    grid_to_home, grid_to_battery, home_to_car: pos(v.ev_power),
  };
}
