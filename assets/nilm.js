/* /nilm: post the chosen or dropped file itself to the upload route (no base64, no Dash body),
   hand the job id to the page (nilm-job), and download labels straight from the server.
   The listeners run in the capture phase on the document and stop the event there, so dcc.Upload
   (React, listening further down) never reads the file: it only draws the zone and the dialog. */
(function () {
    function zoneOf(event) {
        const zone = document.getElementById("nilm-upload-zone");
        return zone && zone.contains(event.target) ? zone : null;
    }

    function tell(id, data) {
        window.dash_clientside.set_props(id, {data: Object.assign({at: Date.now()}, data)});
    }

    function send(zone, file) {
        if (file.size > Number(zone.dataset.maxBytes)) {
            tell("nilm-rejected", {name: file.name, size: file.size});
            return;
        }
        zone.firstElementChild.classList.add("nilm-sending");
        fetch(zone.dataset.url + "?name=" + encodeURIComponent(file.name), {
            method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"},
        })
            .then(function (response) {
                return response.json().catch(function () { return {}; }).then(function (body) {
                    if (response.ok && body.job) { tell("nilm-job", {job: body.job, name: body.name || file.name}); }
                    else {
                        tell("nilm-rejected", {message: body.error
                            || "The server could not take " + file.name + "; please try again."});
                    }
                });
            })
            .catch(function () {
                tell("nilm-rejected", {message: file.name + " did not reach the server; please try again."});
            })
            .finally(function () { zone.firstElementChild.classList.remove("nilm-sending"); });
    }

    document.addEventListener("change", function (event) {
        const zone = zoneOf(event);
        const files = event.target.files;
        if (zone && files && files.length) {
            event.stopPropagation();
            send(zone, files[0]);
            event.target.value = "";  // choosing the same file again is a new upload
        }
    }, true);
    document.addEventListener("drop", function (event) {
        const zone = zoneOf(event);
        if (!zone) { return; }
        event.preventDefault();
        event.stopPropagation();
        if (event.dataTransfer.files.length) { send(zone, event.dataTransfer.files[0]); }
    }, true);

    // dcc.Upload draws its <input type=file> without a way to label it: give it the zone's label,
    // and the zone (the element the keyboard reaches) the role and name of a button.
    function labelUpload() {
        const zone = document.getElementById("nilm-upload-zone");
        const input = zone && zone.querySelector("input[type=file]");
        if (input && !input.hasAttribute("aria-label")) {
            input.setAttribute("aria-label", zone.dataset.label);
            const target = input.parentElement;
            target.setAttribute("role", "button");
            target.setAttribute("aria-label", zone.dataset.label);
        }
    }
    new MutationObserver(labelUpload).observe(document.documentElement, {childList: true, subtree: true});

    // A HEAD first: a result that has expired gets the page's alert, not a failed download.
    window.nilmDownload = function (source, goneMessage) {
        const url = "/nilm/download/" + encodeURIComponent(source.job);
        fetch(url, {method: "HEAD"}).then(function (response) {
            if (!response.ok) {
                tell("nilm-rejected", {message: goneMessage, color: "warning"});
                return;
            }
            const link = document.createElement("a");
            link.href = url;
            link.download = source.download;
            document.body.appendChild(link);
            link.click();
            link.remove();
        }).catch(function () {
            tell("nilm-rejected", {message: "The download could not start; please try again."});
        });
    };
})();
