// The page's client of the /v1 API: submit (with upload progress), poll, cancel, fetch results, and turn
// every error the API answers into a message a person can act on.
//
// URLs are relative ("v1/jobs"), so the page also works behind a reverse proxy that mounts it under a path.
// The API key travels in the Authorization header only, never in a URL.

const KEY_STORAGE = "singsong.apiKey";

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled (private mode): the key lives in the input field only
  }
}

export function storeKey(value) {
  try {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled */
  }
}

/** An API (or network) failure: `status` 0 means the service could not be reached. */
export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

function detailOf(body, status) {
  // FastAPI answers {"detail": "message"}; its own request validation answers {"detail": [{msg, loc}, ...]}.
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return `the service answered HTTP ${status}`;
}

function retryAfterOf(value) {
  const seconds = Number.parseInt(value || "", 10);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export class Api {
  constructor(getKey) {
    this.getKey = getKey;
  }

  headers() {
    const key = this.getKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async fetch(url, options = {}) {
    let response;
    try {
      response = await fetch(url, { ...options, headers: { ...this.headers(), ...(options.headers || {}) } });
    } catch {
      throw new ApiError(0, "the service could not be reached");
    }
    if (!response.ok) {
      const body = parseJson(await response.text());
      throw new ApiError(response.status, detailOf(body, response.status), retryAfterOf(response.headers.get("Retry-After")));
    }
    return response;
  }

  async json(url, options) {
    return (await this.fetch(url, options)).json();
  }

  config() {
    return this.json("web/config.json");
  }

  async openapi() {
    try {
      return await this.json("openapi.json");
    } catch {
      return null; // the schema may be disabled on a hardened deployment; the page has its own defaults
    }
  }

  /** POST v1/jobs with XMLHttpRequest, the only browser API that reports upload progress. */
  submit(form, onUpload) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "v1/jobs");
      for (const [name, value] of Object.entries(this.headers())) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => event.lengthComputable && onUpload(event.loaded / event.total);
      xhr.onerror = () => reject(new ApiError(0, "the service could not be reached"));
      xhr.onload = () => {
        const body = parseJson(xhr.responseText);
        if (xhr.status === 202 && body) resolve(body);
        else reject(new ApiError(xhr.status, detailOf(body, xhr.status), retryAfterOf(xhr.getResponseHeader("Retry-After"))));
      };
      xhr.send(form);
    });
  }

  job(id) {
    return this.json(`v1/jobs/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.fetch(`v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  /** A result file as a Blob plus the file name the API suggests (Content-Disposition). */
  async download(url, fallbackName) {
    const response = await this.fetch(url.replace(/^\//, ""));
    const disposition = response.headers.get("Content-Disposition") || "";
    const star = /filename\*=utf-8''([^;]+)/i.exec(disposition);
    const plain = /filename="?([^";]+)"?/i.exec(disposition);
    let name = fallbackName;
    if (star) name = decodeURIComponent(star[1]);
    else if (plain) name = plain[1];
    return { blob: await response.blob(), name };
  }
}

/** What to tell the person about an error: a title, the API's own message, and what they can do. */
export function explain(error) {
  if (!(error instanceof ApiError)) {
    return { title: "Something went wrong in this page", message: String(error && error.message ? error.message : error), hint: "Reload the page and try again." };
  }
  const wait = error.retryAfter;
  const later = wait ? `Try again in ${wait} s.` : "Try again in a little while.";
  const messages = {
    0: ["Could not reach the service", "Check the connection; the service may be restarting."],
    400: ["The upload was cut off", "Try again."],
    401: ["An API key is needed", "Enter a valid key above (ask the operator of this service for one)."],
    404: ["The job is gone", "It may have expired or been deleted. Send the vocal again."],
    409: ["The result is not ready", "Wait for the job to finish."],
    413: ["The file is too large", "Send a shorter or more compressed recording (mp3, ogg, m4a)."],
    415: ["This file is not audio the service can read", "Send wav, flac, mp3, ogg/opus, webm or m4a."],
    422: ["The service cannot use this vocal or these options", "Change the file or the options, then try again."],
    429: ["Too many requests right now", later],
    503: ["The service is busy", later],
  };
  const [title, hint] = messages[error.status] || [
    error.status >= 500 ? "The service had a problem" : `The service refused the request (HTTP ${error.status})`,
    "Try again; if it keeps failing, tell the operator of this service.",
  ];
  return { title, message: error.detail, hint, retryAfter: wait };
}
