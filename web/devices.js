// @ts-check
/**
 * The room's own devices: which camera, microphone and speaker a site's page uses,
 * remembered per site on this PC (localStorage), and the capture constraints that ask for
 * them. No DOM here: the page draws the chooser.
 */

/** @typedef {{video?: string, audio?: string, speaker?: string}} Choice device ids */

/** @param {string} site @returns {Choice} */
export function remembered(site) {
  try {
    return JSON.parse(localStorage.getItem(`diemcau.devices.${site}`) || "{}") || {};
  } catch {
    return {};
  }
}

/** @param {string} site @param {Choice} choice */
export function remember(site, choice) {
  localStorage.setItem(`diemcau.devices.${site}`, JSON.stringify(choice));
}

/** True once this PC chose devices for the site (the chooser then stays closed at start). */
export function chosen(/** @type {string} */ site) {
  return localStorage.getItem(`diemcau.devices.${site}`) !== null;
}

/**
 * getUserMedia constraints for a choice: the chosen device if it is still there (`ideal`, so
 * an unplugged camera falls back to another instead of failing the join).
 * @param {Choice} choice
 * @returns {MediaStreamConstraints}
 */
export function constraints(choice) {
  /** @type {MediaTrackConstraints} */
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  /** @type {MediaTrackConstraints} */
  const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 30 } };
  if (choice.audio) audio.deviceId = { ideal: choice.audio };
  if (choice.video) video.deviceId = { ideal: choice.video };
  return { audio, video };
}

/** The devices by kind (labels are known once the page may capture). */
export async function list() {
  const all = await navigator.mediaDevices.enumerateDevices();
  const of = (/** @type {MediaDeviceKind} */ kind) => all.filter((d) => d.kind === kind && d.deviceId);
  return { video: of("videoinput"), audio: of("audioinput"), speaker: of("audiooutput") };
}
